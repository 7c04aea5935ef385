"""The streaming layer: Spark reads the `orders` topic and lands it in the lake."""
