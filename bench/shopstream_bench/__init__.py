"""Benchmarks of shopstream, run by `shopstream bench ...` from a source checkout."""

__all__: list[str] = []
