"""The `shopstream` command line."""
