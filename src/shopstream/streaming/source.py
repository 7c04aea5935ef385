"""The Kafka source: the `orders` topic as a streaming DataFrame."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from shopstream.config import Settings

__all__ = ["read_orders"]


def read_orders(spark: SparkSession, settings: Settings, max_per_trigger: int = 0) -> DataFrame:
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
    )
    if max_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", max_per_trigger)
    return reader.load()
