"""The streaming job: two queries on one SparkSession, each with its own checkpoint.

- `lake`: every record, raw, into the lake (file sink, exactly once).
- `enrich`: `foreachBatch` -> parse -> enrich -> insert new orders into MongoDB (`orders`),
  dead letters into `dead_letters`, then the serving rollups (`shopstream.streaming.rollups`).
  Spark re-runs a failed batch with the same offsets; the ledger (`stream_batches`) tells the
  re-run it is one, and the sinks then leave exactly what one clean run would have: once.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from shopstream.config import Settings
from shopstream.streaming.dimensions import Dimensions
from shopstream.streaming.enrich import enrich, parse_events
from shopstream.streaming.lake import WatermarkPublisher, start_lake_query
from shopstream.streaming.mongo_sink import BatchSink
from shopstream.streaming.rollups import RollupWriter, batch_token, ensure_indexes
from shopstream.streaming.source import read_orders

__all__ = ["BatchLedger", "EnrichBatch", "start_enrich_query", "start_job"]

log = logging.getLogger(__name__)


class BatchLedger:
    """One document per micro-batch in `stream_batches`: batch health, timings and attempts.

    A batch that finds its own document was started before and did not finish: Spark replays
    it with the same offsets (`attempts` counts them; the sinks need no flag for it).
    Keys are `<query id>:<zero-padded batch id>` strings (FerretDB looks up string `_id`s by
    index, not integers); the query id comes from the checkpoint, so a fresh checkpoint starts
    a new series instead of mistaking its batch 0 for a replay.
    """

    KEEP = 2_000

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.coll = db["stream_batches"]

    @staticmethod
    def key(query_id: str, batch_id: int) -> str:
        return f"{query_id}:{batch_id:012d}"

    def begin(self, query_id: str, batch_id: int) -> bool:
        """Records the start of a batch; True if this is a replay."""
        key = self.key(query_id, batch_id)
        before = self.coll.find_one({"_id": key})
        doc = {
            "query_id": query_id,
            "batch_id": batch_id,
            "started_at": datetime.now(UTC),
            "attempts": 1 if before is None else int(before.get("attempts", 1)) + 1,
        }
        self.coll.replace_one({"_id": key}, doc, upsert=True)
        if batch_id % 100 == 0 and batch_id >= self.KEEP:
            old = {"$gte": f"{query_id}:", "$lt": self.key(query_id, batch_id - self.KEEP)}
            self.coll.delete_many({"_id": old})
        return before is not None

    def finish(self, query_id: str, batch_id: int, **fields: Any) -> None:
        self.coll.update_one(
            {"_id": self.key(query_id, batch_id)},
            {"$set": {**fields, "finished_at": datetime.now(UTC)}},
        )


class EnrichBatch:
    """The `foreachBatch` function of the enrichment query."""

    def __init__(self, settings: Settings, dimensions: Dimensions) -> None:
        self.url = settings.mongo_url
        self.database = settings.mongo_database
        self.dimensions = dimensions
        self.sink = BatchSink(self.url, self.database, settings.kafka_servers, settings.dlq_topic)
        self._driver_sinks: tuple[BatchLedger, RollupWriter] | None = None

    def _driver_side(self) -> tuple[BatchLedger, RollupWriter]:
        """The ledger and rollup writer (driver-side, created at the first batch)."""
        if self._driver_sinks is None:
            client: MongoClient[dict[str, Any]] = MongoClient(self.url, tz_aware=True)
            db = client[self.database]
            ensure_indexes(db)
            self._driver_sinks = (BatchLedger(db), RollupWriter(db))
        return self._driver_sinks

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        ledger, rollup_writer = self._driver_side()
        started = time.monotonic()
        query_id = batch.sparkSession.sparkContext.getLocalProperty("sql.streaming.queryId")
        if not query_id:
            raise RuntimeError("EnrichBatch must run as a streaming query's foreachBatch")
        events, bad = parse_events(batch)
        events = events.persist()  # joined up to twice and written once: parse once
        try:
            replay = ledger.begin(query_id, batch_id)
            if replay:
                log.warning("batch %d is a replay of a batch that did not finish", batch_id)
            orders, unknown = enrich(events, *self.dimensions.current())
            if self.dimensions.age_s > 1 and not unknown.isEmpty():
                # Ids the cache does not know yet (a customer who just signed up): re-read.
                orders, unknown = enrich(events, *self.dimensions.refresh())
            # One Spark job writes orders and dead letters (each job costs ~0.1 s to launch).
            written = self.sink.write(orders, bad.unionByName(unknown), query_id, batch_id)
            orders_at = datetime.now(UTC)
            buckets = rollup_writer.apply(batch_token(query_id, batch_id), written.deltas)
            ledger.finish(
                query_id,
                batch_id,
                records=written.seen + written.dead,
                orders=written.seen,
                new_orders=written.new,
                dead_letters=written.dead,
                buckets=buckets,
                orders_written_at=orders_at,
                duration_s=round(time.monotonic() - started, 3),
            )
            log.info(
                "batch %d: %d orders (%d new), %d dead letters, %d buckets in %.2f s",
                batch_id, written.seen, written.new, written.dead, buckets,
                time.monotonic() - started,
            )  # fmt: skip
        finally:
            events.unpersist()


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
    spark.streams.addListener(WatermarkPublisher(f"{settings.lake}/orders", settings))
    lake = start_lake_query(read_orders(spark, settings), settings, available_now)
    return [lake, start_enrich_query(spark, settings, available_now)]
