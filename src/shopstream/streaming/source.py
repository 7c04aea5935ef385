"""The Kafka source: the `orders` topic as a streaming DataFrame."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from shopstream.config import Settings

__all__ = ["read_orders"]


def read_orders(spark: SparkSession, settings: Settings, max_offsets: int) -> DataFrame:
    """Streaming rows (key, value, topic, partition, offset, timestamp) of the orders topic.

    A new checkpoint starts at the earliest retained record; after that the checkpoint's
    offsets decide. Lost data (retention passed the checkpoint) fails the query loudly.
    """
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_servers)
        .option("subscribe", settings.orders_topic)
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "true")
        .option("kafka.isolation.level", "read_committed")
        # The consumer's last fetch at the end of a partition otherwise waits 500 ms:
        # measured ~0.5 s off every small micro-batch (docs/research/spark-recipe.md).
        .option("kafka.fetch.max.wait.ms", "20")
        # Bounds a batch after downtime or a backfill instead of one batch holding the whole
        # backlog (each query has its own bound: see Settings).
        .option("maxOffsetsPerTrigger", max_offsets)
    )
    return reader.load()
