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
        # A task's consumer (one per Kafka partition) first waits for the fetch it sent ahead
        # at the end of its previous range, which the broker holds up to this long when no
        # newer record exists: 500 ms by default (~0.5 s off every small micro-batch,
        # docs/research/spark-recipe.md), 20 ms x 6 partitions = 0.12 s of a 200/s batch's
        # 0.25 s task (issue 18). 1 ms keeps a consumer that waits for data from spinning.
        .option("kafka.fetch.max.wait.ms", "1")
        # Bounds a batch after downtime or a backfill instead of one batch holding the whole
        # backlog (each query has its own bound: see Settings).
        .option("maxOffsetsPerTrigger", max_offsets)
    )
    return reader.load()
