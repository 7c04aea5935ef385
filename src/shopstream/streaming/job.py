"""The streaming job: two queries on one SparkSession, each with its own checkpoint.

- `lake`: every record, raw, into the lake (file sink, exactly once).
- `enrich`: `foreachBatch` running **one Spark job per micro-batch**: each task's records (one
  or more whole Kafka partitions) go to `streaming.sink.write_partition` on an executor, which
  parses, enriches from its process's dimension cache and writes orders, markers, customer
  histories and dead letters;
  the driver then adds the partitions' rollup deltas to the rollup documents and their
  customers to the distinct-customer bitmaps, records the batch in the ledger and publishes
  its status (`stream_status`) for the dashboard.

Where the work runs, and why it scales: the writes run in the tasks, each holding whole Kafka
partitions (Spark's Kafka source maps one topic partition to one task, coalesced to fewer for a
small batch, and records are keyed by customer, so a customer's orders and `day|customer`
marker have a single writer). More partitions and executors mean more writers. The driver's
share per batch is O(rollup documents touched), not O(orders).

Spark re-runs a failed batch with the same offsets; the ledger (`stream_batches`) tells the
re-run it is one, and the sinks then leave exactly what one clean run would have: once.
"""

from __future__ import annotations

import functools
import logging
import pickle
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from shopstream.config import Settings
from shopstream.domain.documents import (
    batch_token,
)
from shopstream.store.ferretdb import open_store
from shopstream.store.mongo import all_of
from shopstream.store.protocols import BatchRecorder
from shopstream.streaming.lake import (
    RetentionGuard,
    WatermarkPublisher,
    log_retention,
    start_lake_query,
)
from shopstream.streaming.progress import ProgressPoller
from shopstream.streaming.sink import BatchWrites, PartitionResult, SinkConfig, sink_config
from shopstream.streaming.source import read_orders

__all__ = [
    "BatchLog",
    "EnrichBatch",
    "partition_writer",
    "progress_poller",
    "restart_lake_query",
    "start_enrich_query",
    "start_job",
]

log = logging.getLogger(__name__)

_COLUMNS = ("key", "value", "topic", "partition", "offset", "timestamp")


def partition_writer(
    config: SinkConfig, query_id: str, batch_id: int, recheck: bool
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The `mapInArrow` function: one partition's records in, its pickled result out."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # Resolved in the executor's Python worker, which unpickles this function.
        from pyspark import TaskContext

        from shopstream.streaming.sink import write_partition
        from shopstream.streaming.transform import KafkaRecord

        entered = time.perf_counter()
        records = [
            KafkaRecord(*values)
            for b in batches
            for values in zip(*(b.column(c).to_pylist() for c in _COLUMNS), strict=True)
        ]
        task = TaskContext.get()
        retried = task is not None and task.attemptNumber() > 0
        read = time.perf_counter() - entered
        result = write_partition(records, config, query_id, batch_id, recheck or retried)
        result.seconds = {"input": round(read, 4), **result.seconds}
        yield pa.RecordBatch.from_pydict({"result": [pickle.dumps(result)]})

    return run


class BatchLog:
    """The job's log for people: one line a minute summing the batches, and a line of its own
    for a batch worth a look (a replay, dead letters, or slower than `slow_s`)."""

    def __init__(self, every_s: float = 60.0, slow_s: float = 5.0) -> None:
        self.every_s, self.slow_s = every_s, slow_s
        self._reset()

    def _reset(self) -> None:
        self._since = time.monotonic()
        self._durations: list[float] = []
        self._records = self._new = self._dead = 0

    def batch(self, batch_id: int, written: PartitionResult, documents: int, took: float) -> None:
        self._durations.append(took)
        self._records += written.records
        self._new += written.new
        self._dead += written.dead
        if written.dead or took > self.slow_s:
            log.info(
                "batch %d: %d records, %d orders (%d new), %d dead letters, "
                "%d rollup documents in %.3f s",
                batch_id, written.records, written.orders, written.new, written.dead, documents,
                took,
            )  # fmt: skip
        if time.monotonic() - self._since >= self.every_s:
            self.flush()

    def flush(self) -> None:
        if self._durations:
            ordered = sorted(self._durations)
            log.info(
                "last %.0f s: %d batches, %d records, %d new orders, %d dead letters; "
                "batch time median %.3f s, max %.3f s",
                time.monotonic() - self._since, len(ordered), self._records, self._new,
                self._dead, ordered[len(ordered) // 2], ordered[-1],
            )  # fmt: skip
        self._reset()


@dataclass
class _Driver:
    """The driver's writers, created at the first batch, and the threads they write from."""

    ledger: BatchRecorder
    writes: BatchWrites
    pool: ThreadPoolExecutor


class EnrichBatch:
    """The `foreachBatch` function of the enrichment query."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = sink_config(settings)
        self._last_records = 0
        self._driver: _Driver | None = None
        self._log = BatchLog()
        self._parallelism = 1
        self._speculative = False

    def _tasks(self, spark: SparkSession) -> int:
        """How many tasks write this batch. Each task costs ~50-100 ms of scheduling, Kafka
        fetch and Python round trip however few records it carries, so a small batch (judged by
        the last one: load changes slowly) runs as one task; a large one uses every core.
        Coalescing keeps each Kafka partition whole, so a customer still has one writer."""
        per_task = self.settings.stream_records_per_task
        wanted = -(-self._last_records // per_task)  # ceil
        return max(1, min(wanted, self._parallelism))

    def _driver_side(self, spark: SparkSession) -> _Driver:
        """The ledger and rollup writers (driver-side, created at the first batch)."""
        if self._driver is None:
            self._parallelism = spark.sparkContext.defaultParallelism
            # A speculative copy of a task may insert before the original: recheck duplicates.
            self._speculative = spark.conf.get("spark.speculation", "false") == "true"
            store = open_store(self.settings, app="shopstream-stream")
            store.rollups.ensure_layout(self.settings.clock.zone)
            store.rollups.drop_unused_indexes()
            pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="enrich-driver")
            self._driver = _Driver(
                store.status.recorder(),
                BatchWrites(store, self.settings.rollup_cache_size, pool),
                pool,
            )
        return self._driver

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        called = time.monotonic()
        spark = batch.sparkSession
        driver = self._driver_side(spark)
        ledger = driver.ledger
        query_id = spark.sparkContext.getLocalProperty("sql.streaming.queryId")
        if not query_id:
            raise RuntimeError("EnrichBatch must run as a streaming query's foreachBatch")
        replay = ledger.begin(query_id, batch_id)
        if replay:
            log.warning("batch %d is a replay of a batch that did not finish", batch_id)
        writer = partition_writer(self.config, query_id, batch_id, replay or self._speculative)
        rows = (
            batch.select(*_COLUMNS)
            .coalesce(self._tasks(spark))
            .mapInArrow(writer, "result binary")
            .collect()
        )
        written = PartitionResult.merge(pickle.loads(r["result"]) for r in rows)  # noqa: S301 - our own tasks' output
        self._last_records = written.records
        orders_at = datetime.now(UTC)
        documents = driver.writes.apply(batch_token(query_id, batch_id), written)
        duration = time.monotonic() - called
        finish = functools.partial(
            ledger.finish,
            query_id,
            batch_id,
            records=written.records,
            orders=written.orders,
            new_orders=written.new,
            duplicates=written.duplicates,
            dead_letters=written.dead,
            rollup_documents=documents,
            partitions=len(rows),
            sink_s=written.seconds,
            orders_written_at=orders_at,
            duration_s=round(duration, 4),
        )
        status = functools.partial(driver.ledger.status, query_id, batch_id, written, duration)
        all_of(driver.pool, [finish, status])
        self._log.batch(batch_id, written, documents, duration)


def _in_pool(spark: SparkSession, pool: str) -> None:
    # A query's jobs run in the scheduler pool set on the thread that starts it.
    spark.sparkContext.setLocalProperty("spark.scheduler.pool", pool)


def start_enrich_query(
    spark: SparkSession, settings: Settings, available_now: bool = False
) -> StreamingQuery:
    _in_pool(spark, "enrich")
    writer = (
        read_orders(spark, settings, settings.stream_max_offsets_per_trigger)
        .writeStream.queryName("enrich")
        .option("checkpointLocation", f"{settings.checkpoints}/enrich")
        .foreachBatch(EnrichBatch(settings))
    )
    if available_now:
        return writer.trigger(availableNow=True).start()
    return writer.trigger(processingTime=f"{settings.stream_trigger_s} seconds").start()


def progress_poller(settings: Settings) -> ProgressPoller:
    """What the driver's run loop publishes from the queries' progress: the lake watermark and
    each query's `stream_status` document."""
    return ProgressPoller(
        [
            WatermarkPublisher(f"{settings.lake}/orders", settings),
            open_store(settings, app="shopstream-stream").status.publish_progress,
        ]
    )


def start_job(
    spark: SparkSession, settings: Settings, available_now: bool = False
) -> tuple[list[StreamingQuery], RetentionGuard]:
    """Starts both queries; each keeps its own Kafka offsets in its checkpoint. Their progress
    is published by the caller's loop (`progress_poller`), which also asks the guard whether
    the landing query's log retention still holds (`restart_lake_query`)."""
    _in_pool(spark, "lake")
    retention = log_retention(settings)
    lake = start_lake_query(spark, settings, available_now, retention)
    return [lake, start_enrich_query(spark, settings, available_now)], RetentionGuard(
        settings, retention
    )


def restart_lake_query(
    spark: SparkSession, settings: Settings, query: StreamingQuery, retention: str | None
) -> StreamingQuery:
    """The landing query stopped and started again with `retention` (its interrupted batch
    is replayed from the checkpoint: the file sink commits each batch id once)."""
    query.stop()
    _in_pool(spark, "lake")
    return start_lake_query(spark, settings, False, retention)
