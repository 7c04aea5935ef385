"""The streaming job: two queries on one SparkSession, each with its own checkpoint.

- `lake`: every record, raw, into the lake (file sink, exactly once).
- `enrich`: `foreachBatch` -> parse -> enrich -> upsert into MongoDB (`orders`), dead letters
  into `dead_letters`. Spark re-runs a failed batch with the same data, and the upserts make
  the re-run leave the same documents: effectively once.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from shopstream.config import Settings
from shopstream.streaming.dimensions import Dimensions
from shopstream.streaming.enrich import enrich, parse_events
from shopstream.streaming.lake import start_lake_query
from shopstream.streaming.mongo_sink import write_dead_letters, write_orders
from shopstream.streaming.source import read_orders

__all__ = ["EnrichBatch", "start_enrich_query", "start_job"]

log = logging.getLogger(__name__)


class EnrichBatch:
    """The `foreachBatch` function of the enrichment query."""

    def __init__(self, settings: Settings, dimensions: Dimensions) -> None:
        self.url = settings.mongo_url
        self.database = settings.mongo_database
        self.dimensions = dimensions

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        batch = batch.persist()  # read by several actions below: read Kafka once
        events, bad = parse_events(batch)
        events = events.persist()  # joined up to twice and written twice: parse once
        try:
            orders, unknown = enrich(events, *self.dimensions.current())
            if self.dimensions.age_s > 1 and not unknown.isEmpty():
                # Ids the cache does not know yet (a customer who just signed up): re-read.
                orders, unknown = enrich(events, *self.dimensions.refresh())
            write_orders(orders, self.url, self.database)
            write_dead_letters(bad.unionByName(unknown), self.url, self.database)
            log.info("enriched batch batch_id=%d", batch_id)
        finally:
            events.unpersist()
            batch.unpersist()


def start_enrich_query(
    spark: SparkSession, settings: Settings, available_now: bool = False
) -> StreamingQuery:
    dimensions = Dimensions(spark, settings.postgres_url)
    writer = (
        read_orders(spark, settings)
        .writeStream.queryName("enrich")
        .option("checkpointLocation", f"{settings.checkpoints}/enrich")
        .foreachBatch(EnrichBatch(settings, dimensions))
    )
    if available_now:
        return writer.trigger(availableNow=True).start()
    return writer.trigger(processingTime=f"{settings.stream_trigger_s} seconds").start()


def start_job(
    spark: SparkSession, settings: Settings, available_now: bool = False
) -> list[StreamingQuery]:
    """Starts both queries; each keeps its own Kafka offsets in its checkpoint."""
    lake = start_lake_query(read_orders(spark, settings), settings, available_now)
    return [lake, start_enrich_query(spark, settings, available_now)]
