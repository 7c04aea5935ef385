"""One partition of a micro-batch: transform, then write orders, markers and dead letters.

Runs where Spark runs the task (an executor's Python worker), once per task per batch (a task
holds one or more whole Kafka partitions), with clients and caches kept per process (Python
workers are reused across tasks).
Spark-free: it takes plain records and returns what it did, so tests drive it directly.

Exactly once (docs/streaming.md): an order document is inserted by its first record and never
rewritten, so each order belongs to the one batch whose record inserted it. A duplicate key
on insert normally means "someone else's": a resend, or a record of a batch already counted.
Only a batch that may have run before (a replay after a crash, a retried or speculative task)
can meet its own earlier inserts; then each duplicate is read back and is this batch's if the
stored document names this batch and this very record. The `day|customer` markers behind the
distinct-customer counts follow the same rule, naming the order that set them, and so do dead
letters (counted by reason), naming their batch.

The orders a partition owns also go into their customers' histories (a PostgreSQL table,
`store.customer_history`), idempotent: a replay writes them again, harmlessly. Their customers
are returned to the driver, whose `CustomerSetWriter` adds them to the distinct-customer sets
(`store.customer_sets`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg
from confluent_kafka import KafkaError, Producer

from shopstream.config import Settings
from shopstream.domain import rollups
from shopstream.domain.documents import batch_token
from shopstream.domain.rollups import CustomerSets, Deltas
from shopstream.messaging.clients import producer_config
from shopstream.store.customer_history import HistoryWriter
from shopstream.store.errors import StoreUnavailableError
from shopstream.store.ferretdb import open_store_at
from shopstream.store.mongo import all_of
from shopstream.store.protocols import Store
from shopstream.streaming.dimensions import Dimensions
from shopstream.streaming.transform import KafkaRecord, transform

__all__ = [
    "BatchWrites",
    "PartitionResult",
    "SinkConfig",
    "close",
    "sink_config",
    "write_enriched",
    "write_partition",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkConfig:
    """What a partition writer needs: plain values, shipped to the executors."""

    mongo_url: str
    database: str
    postgres_url: str
    dlq_topic: str
    producer: tuple[tuple[str, Any], ...]  # the dead-letter producer's librdkafka config
    bulk_size: int = 1000
    dlq_flush_timeout_s: float = 30.0
    dimension_max_age_s: float = 30.0
    dimension_cache_size: int = 200_000
    marker_cache_size: int = 500_000
    timezone: str = "UTC"  # the business timezone days are cut in


@dataclass
class PartitionResult:
    """What one partition's write did; summed over partitions by `merge`."""

    records: int = 0
    orders: int = 0  # order records after resends in the input are collapsed
    new: int = 0  # orders this batch inserted (the others already existed)
    dead: int = 0
    duplicates: int = 0
    deltas: Deltas = field(default_factory=dict)
    customers: CustomerSets = field(default_factory=dict)
    newest: datetime | None = None  # the newest order this partition inserted
    # Seconds from Kafka's append to the order's insert, for a sample of the orders.
    latencies: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per phase

    @staticmethod
    def merge(parts: Iterable[PartitionResult]) -> PartitionResult:
        total = PartitionResult()
        parts = list(parts)
        for p in parts:
            total.records += p.records
            total.orders += p.orders
            total.new += p.new
            total.dead += p.dead
            total.duplicates += p.duplicates
            for phase, s in p.seconds.items():  # the slowest partition sets the pace
                total.seconds[phase] = max(total.seconds.get(phase, 0.0), s)
        total.deltas = rollups.merge(p.deltas for p in parts)
        total.customers = rollups.merge_sets(p.customers for p in parts)
        total.newest = max((p.newest for p in parts if p.newest), default=None)
        total.latencies = sorted(x for p in parts for x in p.latencies)
        return total


class _Process:
    """Clients and caches of one worker process, reused by every task it runs."""

    def __init__(self, config: SinkConfig) -> None:
        self.store = open_store_at(
            config.mongo_url, config.database, app="shopstream-stream", bulk_size=config.bulk_size
        )
        self.dimensions = Dimensions.from_url(
            config.postgres_url, config.dimension_max_age_s, config.dimension_cache_size
        )
        self.history = HistoryWriter(config.postgres_url, config.database)
        self.producer: Producer | None = None
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        # `day|customer` -> the owner of its marker ("" = another batch's), bounded.
        self.markers: OrderedDict[str, str] = OrderedDict()

    def dlq_producer(self) -> Producer:
        if self.producer is None:
            self.producer = Producer({**dict(self.config.producer), "logger": log})
        return self.producer

    def remember_marker(self, key: str, owner: str) -> None:
        self.markers[key] = owner
        self.markers.move_to_end(key)
        while len(self.markers) > self.config.marker_cache_size:
            self.markers.popitem(last=False)


_PROCESSES: dict[SinkConfig, _Process] = {}


def _reset(config: SinkConfig) -> None:
    """Drops a process's clients, so the next attempt connects afresh."""
    proc = _PROCESSES.pop(config, None)
    if proc is not None:
        proc.store.close()
        proc.dimensions.close()
        proc.history.close()


def _process(config: SinkConfig) -> _Process:
    if config not in _PROCESSES:
        _PROCESSES[config] = _Process(config)
    return _PROCESSES[config]


# Lost connections (a restarted server, a network blip) are retried; anything else is a bug
# or bad data and fails the task loudly (Spark then fails the batch, which is replayed).
_TRANSIENT: tuple[type[Exception], ...] = (StoreUnavailableError, psycopg.OperationalError)
_BACKOFF_S = (1.0, 3.0, 9.0)


def write_partition(
    records: list[KafkaRecord],
    config: SinkConfig,
    query_id: str,
    batch_id: int,
    recheck: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> PartitionResult:
    """Writes one partition; `recheck` when this batch or task may have run before.

    A lost connection is retried with backoff, as a re-run that rechecks (the failed attempt
    may have written part of the partition), then raised.
    """
    for pause in _BACKOFF_S:
        try:
            return _write(records, config, query_id, batch_id, recheck)
        except _TRANSIENT as exc:
            if isinstance(exc, StoreUnavailableError) and not exc.transient:
                raise
            log.warning("partition write failed, retrying in %.0f s: %s", pause, exc)
            _reset(config)
            recheck = True
            sleep(pause)
    return _write(records, config, query_id, batch_id, recheck)


def _write(
    records: list[KafkaRecord], config: SinkConfig, query_id: str, batch_id: int, recheck: bool
) -> PartitionResult:
    proc = _process(config)
    processed_at = datetime.now(UTC)
    clock = _Clock()
    out = transform(records, proc.dimensions, processed_at, query_id, batch_id)
    result = PartitionResult(
        records=len(records), orders=len(out.orders), dead=len(out.dead),
        duplicates=out.duplicates,
    )  # fmt: skip
    clock.lap("transform")
    _write_documents(proc, out.orders, out.dead, batch_token(query_id, batch_id), recheck, result)
    result.seconds = clock.laps | result.seconds
    return result


def write_enriched(
    orders: list[dict[str, Any]], config: SinkConfig, query_id: str, batch_id: int
) -> PartitionResult:
    """Writes order documents already enriched (as `streaming.transform` builds them: tests,
    benchmarks, an import) exactly as a batch's partition does: the orders, their
    `day|customer` markers and their customers' histories. Hand the result to `BatchWrites`
    for the driver's share; `close(config)` when done."""
    result = PartitionResult(records=len(orders), orders=len(orders))
    _write_documents(_process(config), orders, [], batch_token(query_id, batch_id), False, result)
    return result


def close(config: SinkConfig) -> None:
    """Closes the clients this process opened for `config`."""
    _reset(config)


def _write_documents(
    proc: _Process,
    orders: list[dict[str, Any]],
    dead: list[dict[str, Any]],
    token: str,
    recheck: bool,
    result: PartitionResult,
) -> None:
    clock = _Clock()
    owned = _owned_orders(proc, orders, recheck)
    result.new = len(owned)
    result.deltas = rollups.order_deltas(owned, proc.tz)
    result.customers = rollups.customer_sets(owned, proc.tz)
    result.newest = max((o["created_at"] for o in owned), default=None)
    result.latencies = _latencies(owned, datetime.now(UTC))
    clock.lap("orders")
    rollups.add_customers(result.deltas, _owned_markers(proc, owned, token, recheck))
    clock.lap("markers")
    proc.history.write(owned)
    clock.lap("history")
    if dead:
        mine = _owned_dead(proc, dead, recheck)
        rollups.dead_letter_deltas(mine, result.deltas)
        _publish(proc.dlq_producer(), proc.config, dead)
    clock.lap("dead_letters")
    result.seconds = clock.laps


def _owned_orders(
    proc: _Process, docs: list[dict[str, Any]], recheck: bool
) -> list[dict[str, Any]]:
    owned = proc.store.orders.insert_orders(docs, recheck)
    if recheck:  # only after a crash or a task retry
        # In record order, however the attempts interleaved: markers go to the first order.
        owned.sort(key=lambda d: (d["ingest"]["partition"], d["ingest"]["offset"]))
    return owned


_LATENCY_SAMPLE = 200


def _latencies(orders: list[dict[str, Any]], written_at: datetime) -> list[float]:
    """Kafka-append-to-MongoDB seconds of (an even sample of) the orders just written."""
    step = max(1, len(orders) // _LATENCY_SAMPLE)
    out = []
    for order in orders[::step]:
        appended = order["ingest"]["kafka_timestamp"]
        if appended.tzinfo is None:
            appended = appended.replace(tzinfo=UTC)
        out.append(round((written_at - appended).total_seconds(), 3))
    return out


def _owned_dead(proc: _Process, docs: list[dict[str, Any]], recheck: bool) -> list[dict[str, Any]]:
    """The dead letters this batch inserted (`replayed_at` of existing ones stays as it is)."""
    return proc.store.orders.insert_dead_letters(docs, recheck)


def _owned_markers(
    proc: _Process, orders: list[dict[str, Any]], token: str, recheck: bool
) -> list[str]:
    """The `day|customer` markers these orders set (first order of a customer's day)."""
    mine: dict[str, str] = {}  # key -> owner
    for order in orders:
        key = rollups.customer_day(order, proc.tz)
        mine.setdefault(key, f"{token}|{order['_id']}")
    owned, todo = [], {}
    for key, owner in mine.items():
        known = proc.markers.get(key)
        if known is None:
            todo[key] = owner
        elif known == owner:  # set by an earlier attempt of this very task, in this process
            owned.append(key)
    for key, owner in proc.store.orders.claim_markers(todo, recheck).items():
        if owner == todo[key]:
            owned.append(key)
        proc.remember_marker(key, owner)
    return owned


def _publish(producer: Producer, config: SinkConfig, docs: list[dict[str, Any]]) -> None:
    """At least once, keyed by the source coordinates: a replayed batch may publish a record
    again under the same key (consumers dedupe by key; the topic may be compacted)."""
    failed: list[str] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failed.append(str(err))

    for doc in docs:
        value = orjson.dumps(doc)  # datetimes as RFC 3339
        producer.produce(config.dlq_topic, value, doc["_id"].encode(), on_delivery=delivered)
        producer.poll(0)
    if producer.flush(config.dlq_flush_timeout_s) or failed:
        raise RuntimeError(f"dead letters not acknowledged by Kafka ({config.dlq_topic}): {failed}")


class BatchWrites:
    """The driver's share of a batch: the partitions' rollup deltas into the rollup documents
    and their customers into the distinct-customer sets, written side by side (separate
    documents). Both writers are idempotent per batch token."""

    def __init__(
        self, store: Store, cache_size: int = 200_000, pool: ThreadPoolExecutor | None = None
    ) -> None:
        self._own_pool = pool is None
        self.pool = pool or ThreadPoolExecutor(max_workers=3, thread_name_prefix="batch-writes")
        self.rollups = store.rollups.writer(cache_size, self.pool)
        self.customer_sets = store.rollups.customer_set_writer()

    def apply(self, token: str, written: PartitionResult) -> int:
        """Writes batch `token`'s merged result; returns the documents written."""
        return sum(
            all_of(
                self.pool,
                [
                    lambda: self.rollups.apply(token, written.deltas),
                    lambda: self.customer_sets.apply(written.customers),
                ],
            )
        )

    def close(self) -> None:
        """Stops the threads it started (none when it was given a pool)."""
        if self._own_pool:
            self.pool.shutdown()


def sink_config(settings: Settings) -> SinkConfig:
    producer = producer_config(settings, client_id="shopstream-stream-dlq", logger=False)
    return SinkConfig(
        mongo_url=settings.mongo_url,
        database=settings.mongo_database,
        postgres_url=settings.postgres_url,
        dlq_topic=settings.dlq_topic,
        producer=tuple(sorted(producer.items())),
        bulk_size=settings.mongo_bulk_size,
        dlq_flush_timeout_s=settings.dlq_flush_timeout_s,
        dimension_max_age_s=settings.dimension_refresh_s,
        dimension_cache_size=settings.dimension_cache_size,
        marker_cache_size=settings.marker_cache_size,
        timezone=settings.business_timezone,
    )


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 4)
        self._last = now
