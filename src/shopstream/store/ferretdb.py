"""The store for FerretDB v1 (and any MongoDB): `store.protocols` over documents read by `_id`.

`open_store(settings)` is how everything outside this package gets a store; it is the one
place that picks an implementation. FerretDB v1 indexes only an exact `_id` lookup, so every
part here reads by key (docs/ferretdb.md); a real MongoDB runs the same code unchanged. The
layouts live beside the code that reads and writes them:

- orders, `day|customer` markers and dead letters: insert-first ownership (`store.mongo`,
  docs/streaming.md "Exactly once");
- the serving rollups and their layout (`store.rollup_store`, `store.rollup_reader`) and the
  distinct-customer bitmaps (`store.customer_sets`);
- each product's daily demand, quarterly binary arrays in 64 shards (`store.demand_history`),
  the detected and emerging spikes (`store.spike_store`), the detector's lease
  (`store.leases`), the spike alerts' delivery ledger (`store.spike_alerts`);
- the job's ledger and status documents (`store.stream_status`), the dead letters
  (`store.dead_letters`).

Every public method turns the driver's errors into `StoreUnavailableError`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from shopstream.config import Settings
from shopstream.domain.documents import CUSTOMER_DAYS, DEAD_LETTERS, ORDERS
from shopstream.domain.rollups import marker_document
from shopstream.store import (
    customer_sets,
    dead_letters,
    demand_history,
    leases,
    rollup_store,
    spike_alerts,
    spike_labels,
    spike_store,
    stream_status,
)
from shopstream.store.client import Client, StoreDatabase, connect
from shopstream.store.errors import translated, translating
from shopstream.store.mongo import find_each, insert_once, insert_owned
from shopstream.store.protocols import (
    BatchOutcome,
    BatchRecorder,
    CustomerSetWriter,
    Document,
    LeaseHolder,
    RollupQueries,
    RollupWriter,
    Store,
)
from shopstream.store.records import (
    AlertDelivery,
    AlertStatus,
    BatchRecord,
    BatchSummary,
    DayDemand,
    DaySpikes,
    DeadLetter,
    EmergingSpikes,
    History,
    QueryLag,
    QueryProgress,
    SpikeLabel,
)
from shopstream.store.rollup_reader import RollupReader

__all__ = ["FerretStore", "open_store", "open_store_at", "same_record"]


def open_store(
    settings: Settings, app: str = "shopstream", timeout_s: float | None = None
) -> Store:
    """The configured store (`SHOPSTREAM_MONGO_URL`, `SHOPSTREAM_MONGO_DATABASE`). `timeout_s`
    bounds a call's wait for an unreachable server (people waiting: the CLI, the dashboard);
    without it a call waits pymongo's 30 s, long enough to ride out a restart (the job)."""
    return open_store_at(
        settings.mongo_url,
        settings.mongo_database,
        app=app,
        timeout_s=timeout_s,
        bulk_size=settings.mongo_bulk_size,
    )


def open_store_at(
    url: str,
    database: str,
    *,
    app: str = "shopstream",
    timeout_s: float | None = None,
    bulk_size: int = 1000,
) -> Store:
    """The store of database `database` at `url` (connects lazily, on its first call)."""
    return FerretStore(connect(url, app, timeout_s), database, bulk_size)


def same_record(stored: Mapping[str, Any] | None, mine: Mapping[str, Any]) -> bool:
    """Whether a stored order's `ingest` names this batch and this very Kafka record (a
    document written before the job recorded them belongs to no batch it could be running)."""
    keys = ("query_id", "batch_id", "topic", "partition", "offset")
    return stored is not None and all(stored.get(k) == mine[k] for k in keys)


class _Orders:
    def __init__(self, db: StoreDatabase, bulk_size: int) -> None:
        self.db, self.bulk_size = db, bulk_size

    @translated
    def insert_orders(self, docs: Sequence[Document], recheck: bool) -> list[Document]:
        def mine(stored: Document, doc: Document) -> bool:
            return same_record(stored.get("ingest"), doc["ingest"])

        return insert_owned(self.db[ORDERS], list(docs), self.bulk_size, recheck, mine)

    @translated
    def claim_markers(self, wanted: Mapping[str, str], recheck: bool) -> dict[str, str]:
        coll = self.db[CUSTOMER_DAYS]
        todo = [marker_document(key, owner) for key, owner in wanted.items()]
        inserted, existing = insert_once(coll, todo, self.bulk_size)
        owners = {doc["_id"]: doc["owner"] for doc in inserted}
        ids = [d["_id"] for d in existing]
        stored = find_each(coll, ids) if recheck else [None] * len(ids)
        owners |= {
            i: str(was.get("owner", "")) if was else "" for i, was in zip(ids, stored, strict=True)
        }
        return owners

    @translated
    def insert_dead_letters(self, docs: Sequence[Document], recheck: bool) -> list[Document]:
        """A record sits in one batch of a query, so an existing dead letter naming this batch
        was inserted by an earlier attempt of it (its `replayed_at` stays as it is)."""

        def mine(stored: Document, doc: Document) -> bool:
            return bool(stored.get("batch") == doc["batch"])

        return insert_owned(self.db[DEAD_LETTERS], list(docs), self.bulk_size, recheck, mine)

    @translated
    def orders(self, order_ids: Sequence[str]) -> list[Document | None]:
        return find_each(self.db[ORDERS], list(order_ids))

    @translated
    def inserting_batches(self) -> dict[str, tuple[str, int]]:
        cursor = self.db[ORDERS].find({}, {"ingest": 1}, batch_size=5_000)
        return {d["_id"]: (d["ingest"]["query_id"], d["ingest"]["batch_id"]) for d in cursor}


class _Rollups:
    def __init__(self, db: StoreDatabase, bulk_size: int) -> None:
        self.db, self.bulk_size = db, bulk_size

    def writer(
        self, cache_size: int = 200_000, pool: ThreadPoolExecutor | None = None
    ) -> RollupWriter:
        return _Translated(rollup_store.RollupWriter(self.db, cache_size, self.bulk_size, pool))

    def customer_set_writer(self, cache_size: int = 256) -> CustomerSetWriter:
        return _Translated(customer_sets.CustomerSetWriter(self.db, cache_size))

    def reader(
        self, tz: tzinfo, closed_ttl_s: float = 60.0, clock: Callable[[], float] | None = None
    ) -> RollupQueries:
        return RollupReader(self.db, tz, closed_ttl_s=closed_ttl_s, clock=clock or time.monotonic)

    @translated
    def ensure_layout(self, zone: ZoneInfo) -> None:
        rollup_store.check_layout(self.db, zone.key)

    @translated
    def drop_unused_indexes(self) -> list[str]:
        return rollup_store.drop_unused_indexes(self.db)

    @translated
    def check(self, zone: ZoneInfo, postgres_url: str) -> list[str]:
        return rollup_store.check(self.db, zone, postgres_url)

    @translated
    def rebuild(self, zone: ZoneInfo, postgres_url: str) -> int:
        return rollup_store.rebuild_all(self.db, zone, postgres_url)


class _Translated:
    """A writer whose `apply` raises `StoreUnavailableError` for the driver's errors."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    @translated
    def apply(self, *args: Any) -> int:
        return int(self._writer.apply(*args))


class _Demand:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    @translated
    def read_day(self, day: date, zone: ZoneInfo) -> DayDemand:
        return demand_history.read_day(self.db, day, zone)

    @translated
    def load_days(self, days: Sequence[DayDemand], zone: ZoneInfo) -> None:
        demand_history.load_days(self.db, days, zone.key)

    @translated
    def read_history(self, start: date, end: date, orders_from: date | None = None) -> History:
        return demand_history.read_history(self.db, start, end, orders_from)

    @translated
    def loaded_days(self, start: date, end: date) -> set[date]:
        return demand_history.loaded_days(self.db, start, end)

    @translated
    def stored_day(self, day: date) -> DayDemand:
        return demand_history.stored_day(self.db, day)


class _Spikes:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def detected_days(self) -> dict[str, int]:
        return spike_store.detected_days(self.db)

    def store_events(self) -> dict[str, float]:
        return spike_store.store_events(self.db)

    def spikes_of(self, day: str) -> DaySpikes | None:
        return spike_store.spikes_of(self.db, day)

    def emerging(self, day: str) -> EmergingSpikes | None:
        return spike_store.emerging(self.db, day)

    @translated
    def write_day(self, day: str, doc: Mapping[str, Any]) -> None:
        spike_store.write_day(self.db, day, dict(doc))

    @translated
    def write_emerging(self, day: str, doc: Mapping[str, Any]) -> None:
        spike_store.write_emerging(self.db, day, dict(doc))

    def labels(self) -> list[SpikeLabel]:
        return spike_labels.labels(self.db)

    def set_label(
        self,
        day: str,
        product_id: int,
        label: str | None,
        note: str = "",
        by: str = "",
        at: datetime | None = None,
    ) -> None:
        spike_labels.set_label(self.db, day, product_id, label, note, by, at)


class _Alerts:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    @translated
    def ledger(self, day: str) -> dict[str, AlertDelivery]:
        return spike_alerts.ledger(self.db, day)

    @translated
    def record(self, day: str, entries: Sequence[AlertDelivery]) -> None:
        spike_alerts.record(self.db, day, entries)

    @translated
    def status(self) -> AlertStatus:
        return spike_alerts.status(self.db)

    @translated
    def record_status(self, status: AlertStatus) -> None:
        spike_alerts.record_status(self.db, status)


class _Leases:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    @contextmanager
    def hold(
        self, wait_s: float | None = None, ttl_s: float = leases.DEFAULT_TTL_S
    ) -> Iterator[LeaseHolder]:
        with translating(), leases.lease(self.db, wait_s, ttl_s) as held:
            yield held


class _Recorder:
    def __init__(self, db: StoreDatabase) -> None:
        self.ledger = stream_status.BatchLedger(db)
        self.enrich = stream_status.EnrichStatus(db)

    @translated
    def begin(self, query_id: str, batch_id: int) -> bool:
        return self.ledger.begin(query_id, batch_id)

    @translated
    def finish(self, query_id: str, batch_id: int, **fields: Any) -> None:
        self.ledger.finish(query_id, batch_id, **fields)

    @translated
    def status(self, query_id: str, batch_id: int, batch: BatchOutcome, took: float) -> None:
        self.enrich.record(query_id, batch_id, batch, took)


class _Status:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def query_progress(self, name: str) -> QueryProgress | None:
        return stream_status.query_progress(self.db, name)

    def query_lag(self, name: str, topic: str, ends: Mapping[str, int] | None) -> QueryLag:
        return stream_status.query_lag(self.db, name, topic, ends)

    def last_batches(self) -> BatchSummary:
        return stream_status.last_batches(self.db)

    def finished_batches(
        self, query_id: str | None = None, since: datetime | None = None
    ) -> list[BatchRecord]:
        return stream_status.finished_batches(self.db, query_id, since)

    def open_batches(self) -> list[tuple[str, int]]:
        return stream_status.open_batches(self.db)

    def dead_letter_counts(self) -> dict[str, int]:
        return stream_status.dead_letters(self.db)

    @translated
    def recorder(self) -> BatchRecorder:
        return _Recorder(self.db)

    def publish_progress(self, progress: Mapping[str, Any]) -> None:
        stream_status.publish_progress(self.db, progress)


class _DeadLetters:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def newest(
        self, reason: str | None = None, include_replayed: bool = False, limit: int = 50
    ) -> list[DeadLetter]:
        return dead_letters.newest(self.db, reason, include_replayed, limit)

    def summary(self) -> Counter[tuple[str, bool]]:
        return dead_letters.summary(self.db)

    def unreplayed(self, reason: str | None = None) -> Iterator[DeadLetter]:
        return dead_letters.unreplayed(self.db, reason)

    @translated
    def mark_replayed(self, key: str, at: datetime, to: str) -> None:
        dead_letters.mark_replayed(self.db, key, at, to)


class FerretStore:
    """A database of a FerretDB (or MongoDB) server, as a `store.protocols.Store`."""

    def __init__(self, client: Client, database: str, bulk_size: int = 1000) -> None:
        self.client = client
        self.name = database
        db = client[database]
        self.db = db  # for this package's own tests of the layouts
        self.orders = _Orders(db, bulk_size)
        self.rollups = _Rollups(db, bulk_size)
        self.demand = _Demand(db)
        self.spikes = _Spikes(db)
        self.alerts = _Alerts(db)
        self.leases = _Leases(db)
        self.status = _Status(db)
        self.dead_letters = _DeadLetters(db)

    @translated
    def drop(self) -> None:
        self.client.drop_database(self.name)

    def close(self) -> None:
        self.client.close()


def _check(store: FerretStore) -> Store:
    return store  # mypy checks here that FerretStore is a Store
