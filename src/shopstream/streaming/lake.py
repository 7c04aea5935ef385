"""Lake landing: every Kafka record, untransformed, as Parquet partitioned by event date.

Rows keep the raw `key` and `value` bytes exactly as they were on the topic, plus the Kafka
coordinates and the few parsed columns needed to partition (`order_id`, `created_at`,
`dt`). A record whose value does not parse still lands, in `dt=unparsed` (its date cannot be
known): the lake is the complete, raw history. Spark's file sink commits each micro-batch
in `_spark_metadata`, so Spark readers see each record exactly once;
`shopstream.streaming.committed` gives non-Spark readers the same view.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from shopstream.config import Settings

__all__ = ["UNPARSED_DAY", "lake_rows", "start_lake_query"]

UNPARSED_DAY = "unparsed"


def _event_time(value: Column) -> Column:
    # The API writes RFC 3339 UTC timestamps ("...Z"); the session timezone is UTC.
    return F.to_timestamp(F.get_json_object(value.cast("string"), "$.created_at"))


def lake_rows(kafka: DataFrame) -> DataFrame:
    """Kafka source rows -> lake rows (pure; works on batch and streaming frames)."""
    created = _event_time(F.col("value"))
    return kafka.select(
        F.col("key"),
        F.col("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.get_json_object(F.col("value").cast("string"), "$.order_id").alias("order_id"),
        created.alias("created_at"),
        F.coalesce(F.date_format(created, "yyyy-MM-dd"), F.lit(UNPARSED_DAY)).alias("dt"),
    )


def start_lake_query(
    kafka: DataFrame, settings: Settings, available_now: bool = False
) -> StreamingQuery:
    """Starts the landing query: Parquet under `settings.lake`/orders, one commit per batch."""
    writer = (
        lake_rows(kafka)
        .writeStream.format("parquet")
        .queryName("lake")
        .option("path", f"{settings.lake}/orders")
        .option("checkpointLocation", f"{settings.checkpoints}/lake")
        .partitionBy("dt")
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.stream_trigger_s} seconds")
    return writer.start()
