"""The streaming layer: Spark reads the `orders` topic, lands it in the lake and enriches it into
the document store."""
