"""What the rest of shopstream may ask of the document store: one Protocol per part of it.

The stream sink, the dashboard, the spike jobs, the CLI, the tests and the benchmarks hold a
`Store` (from `store.open_store`) and call these methods; none of them sees a collection, a
query filter or a pymongo type. `store.ferretdb.FerretStore` implements them for FerretDB v1
(point lookups only: shards, binary arrays, bitmaps, insert-first), which a real MongoDB runs
too; docs/architecture.md says what a MongoDB-specific implementation would change.

What crosses this boundary is the domain's: dataclasses (`DayDemand`, `History`, `Kpis`,
`QueryLag`, `DeadLetter`, ...), `domain.rollups`' deltas and customer sets, and the order
documents `streaming.transform` builds (the enriched order *is* its stored document: the sink
hands the store what it built and gets back the ones its batch owns; converting 3,000 orders a
second into objects and back would cost the hot path for nothing, decision 42). Spike
documents are still mappings inside `DaySpikes`/`EmergingSpikes`: issue 21 reshapes them.

Every method raises `StoreUnavailableError` (`store.errors`) when the store cannot be reached
or fails; nothing else of the driver's escapes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import date, datetime, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from shopstream.domain.rollups import CustomerSets, Deltas
from shopstream.domain.windows import Span
from shopstream.store.records import (
    AlertDelivery,
    AlertStatus,
    BatchRecord,
    BatchSummary,
    DayDemand,
    DaySpikes,
    DeadLetter,
    EmergingSpikes,
    Freshness,
    History,
    Kpis,
    ProductRow,
    QueryLag,
    QueryProgress,
    SpikeLabel,
    Totals,
    Trend,
)

__all__ = [
    "BatchOutcome",
    "BatchRecorder",
    "CustomerSetWriter",
    "DeadLetters",
    "DemandHistory",
    "Document",
    "LeaseHolder",
    "Leases",
    "OrderStore",
    "RollupQueries",
    "RollupStore",
    "RollupWriter",
    "SpikeAlerts",
    "SpikeStore",
    "Store",
    "StreamStatus",
]

Document = dict[str, Any]  # an order or dead-letter document as `streaming.transform` builds it


# ----------------------------------------------------------------------------- the sink's


class OrderStore(Protocol):
    """The enriched orders, the `day|customer` markers and the dead letters: each inserted once
    by its first writer, never rewritten (docs/streaming.md, "Exactly once")."""

    def insert_orders(self, docs: Sequence[Document], recheck: bool) -> list[Document]:
        """Inserts the orders that are new; returns those this batch owns: the ones it
        inserted and, when `recheck` (the batch may have run before), those already stored
        by this very batch and record (`ingest` names them)."""
        ...

    def claim_markers(self, wanted: Mapping[str, str], recheck: bool) -> dict[str, str]:
        """Sets each `day|customer` marker of `wanted` (key -> owner) that is not set yet;
        returns every key's owner as stored: the wanted owner where it was set now, the stored
        owner of an existing one when `recheck`, else "" (another batch's)."""
        ...

    def insert_dead_letters(self, docs: Sequence[Document], recheck: bool) -> list[Document]:
        """Like `insert_orders`, for dead letters (a stored one is this batch's when it names
        this batch)."""
        ...

    def orders(self, order_ids: Sequence[str]) -> list[Document | None]:
        """The stored orders with these ids, in order (None where there is none)."""
        ...

    def inserting_batches(self) -> dict[str, tuple[str, int]]:
        """Order id -> (query id, batch id) of the batch that inserted it, for every stored
        order (reads them all: checks and benchmarks)."""
        ...


# ----------------------------------------------------------------------------- the rollups


class RollupWriter(Protocol):
    def apply(self, batch: str, deltas: Deltas) -> int:
        """Adds `batch`'s deltas once (a replayed batch adds nothing twice); returns the
        documents written."""
        ...


class CustomerSetWriter(Protocol):
    def apply(self, sets: CustomerSets) -> int:
        """Adds customers to the distinct-customer sets (idempotent); returns documents
        written."""
        ...


class RollupQueries(Protocol):
    """The Overview page's numbers, for windows of `domain.windows`."""

    def totals(self, span: Span, now: datetime) -> Totals: ...
    def all_time(self) -> Totals: ...
    def kpis(self, window: str, now: datetime) -> Kpis: ...
    def first_day(self) -> date | None: ...
    def trend(self, window: str, now: datetime, top_n: int = 5) -> Trend: ...
    def top_products(self, day: date, n: int = 10) -> list[ProductRow]: ...
    def freshness(self) -> Freshness: ...
    def today(self, now: datetime) -> date: ...


class RollupStore(Protocol):
    """The serving rollups and the distinct-customer sets (docs/dashboard.md)."""

    def writer(
        self, cache_size: int = 200_000, pool: ThreadPoolExecutor | None = None
    ) -> RollupWriter: ...

    def customer_set_writer(self, cache_size: int = 256) -> CustomerSetWriter: ...

    def reader(
        self, tz: tzinfo, closed_ttl_s: float = 60.0, clock: Callable[[], float] | None = None
    ) -> RollupQueries:
        """A reader that keeps closed buckets up to `closed_ttl_s` (by `clock`, monotonic
        seconds; the real one by default)."""
        ...

    def ensure_layout(self, zone: ZoneInfo) -> None:
        """Records this version's layout in an empty store; raises `RuntimeError` (saying how
        to fix it) on rollups of another layout or business timezone."""
        ...

    def drop_unused_indexes(self) -> list[str]: ...

    def check(self, zone: ZoneInfo, postgres_url: str) -> list[str]:
        """Every rollup, customer set and history row that differs from a recomputation from
        the stored orders and dead letters (reads them whole)."""
        ...

    def rebuild(self, zone: ZoneInfo, postgres_url: str) -> int:
        """Recomputes the rollups, customer sets and histories; returns documents and rows
        written. Stop the job first."""
        ...


# ----------------------------------------------------------------------------- demand, spikes


class DemandHistory(Protocol):
    """Each product's daily demand (docs/spikes.md, "Where the history lives")."""

    def read_day(self, day: date, zone: ZoneInfo) -> DayDemand:
        """A business day's demand, from the stream's rollups."""
        ...

    def load_days(self, days: Sequence[DayDemand], zone: ZoneInfo) -> None:
        """Stores the days' demand and folds it into the history (hold the lease)."""
        ...

    def read_history(self, start: date, end: date, orders_from: date | None = None) -> History:
        """Units per product per day over [start, end], and orders from `orders_from` (default
        `start`) on."""
        ...

    def loaded_days(self, start: date, end: date) -> set[date]: ...

    def stored_day(self, day: date) -> DayDemand:
        """A day's demand as `load_days` stored it (empty if never loaded)."""
        ...


class SpikeStore(Protocol):
    def detected_days(self) -> dict[str, int]:
        """Every detected day, newest first, with its number of spikes."""
        ...

    def store_events(self) -> dict[str, float]:
        """Every day the whole store surged (a store event), oldest first, with its level."""
        ...

    def spikes_of(self, day: str) -> DaySpikes | None: ...

    def emerging(self, day: str) -> EmergingSpikes | None: ...

    def write_day(self, day: str, doc: Mapping[str, Any]) -> None: ...

    def write_emerging(self, day: str, doc: Mapping[str, Any]) -> None: ...

    def labels(self) -> list[SpikeLabel]:
        """Every label users gave a detected spike, by day then product."""
        ...

    def set_label(
        self,
        day: str,
        product_id: int,
        label: str | None,
        note: str = "",
        by: str = "",
        at: datetime | None = None,
    ) -> None:
        """Labels a day's spike of a product (`expected` or `wrong`), or clears it (None)."""
        ...


class SpikeAlerts(Protocol):
    """The spike alerts' delivery ledger: each business day's alerts by key (a product id, or
    "store"), and one status for the Pipeline health page (docs/spikes.md, "Alerts")."""

    def ledger(self, day: str) -> dict[str, AlertDelivery]:
        """The day's alerts by key ({} before the first)."""
        ...

    def record(self, day: str, entries: Sequence[AlertDelivery]) -> None:
        """Stores these alerts of the day, each whole (the day's others stay as they are)."""
        ...

    def status(self) -> AlertStatus: ...

    def record_status(self, status: AlertStatus) -> None: ...


class LeaseHolder(Protocol):
    def renew(self) -> None:
        """Extends the lease now; raises `store.leases.LeaseLostError` if it is not held any
        more (call it between units of work: a heartbeat keeps it alive meanwhile)."""
        ...


class Leases(Protocol):
    def hold(
        self, wait_s: float | None = None, ttl_s: float = 30.0
    ) -> AbstractContextManager[LeaseHolder]:
        """Holds the demand history's lease for a block (a heartbeat extends it; a dead
        holder's lease expires after `ttl_s`); waits up to `wait_s` (default twice `ttl_s`),
        then raises `store.leases.LeaseBusyError` naming the holder."""
        ...


# ----------------------------------------------------------------------------- status, DLQ


class BatchOutcome(Protocol):
    """What a finished batch reports (the job's merged partition results)."""

    records: int
    new: int
    dead: int
    newest: datetime | None
    latencies: list[float]


class BatchRecorder(Protocol):
    """The job's records of its own batches (the ledger and the enrichment's status)."""

    def begin(self, query_id: str, batch_id: int) -> bool:
        """Records a batch's start; True if it started before (a replay)."""
        ...

    def finish(self, query_id: str, batch_id: int, **fields: Any) -> None: ...

    def status(self, query_id: str, batch_id: int, batch: BatchOutcome, took: float) -> None:
        """Publishes the batch to the enrichment's status (read by the dashboard)."""
        ...


class StreamStatus(Protocol):
    def query_progress(self, name: str) -> QueryProgress | None: ...

    def query_lag(self, name: str, topic: str, ends: Mapping[str, int] | None) -> QueryLag:
        """How far query `name` is behind Kafka's end offsets `ends` (partition -> offset)."""
        ...

    def last_batches(self) -> BatchSummary: ...

    def finished_batches(
        self, query_id: str | None = None, since: datetime | None = None
    ) -> list[BatchRecord]:
        """The ledger's finished batches (of one query; started at or after `since`): reads
        the ledger whole (a few thousand small documents, kept bounded by the job)."""
        ...

    def open_batches(self) -> list[tuple[str, int]]:
        """(query id, batch id) of the batches begun and not finished: in flight, or left by
        a crash (reads the ledger whole)."""
        ...

    def dead_letter_counts(self) -> dict[str, int]: ...

    def recorder(self) -> BatchRecorder: ...

    def publish_progress(self, progress: Mapping[str, Any]) -> None:
        """Stores a query's `lastProgress`; never raises (a query must not fail for it)."""
        ...


class DeadLetters(Protocol):
    def newest(
        self, reason: str | None = None, include_replayed: bool = False, limit: int = 50
    ) -> list[DeadLetter]: ...

    def summary(self) -> Counter[tuple[str, bool]]:
        """How many per (reason, replayed)."""
        ...

    def unreplayed(self, reason: str | None = None) -> Iterator[DeadLetter]: ...

    def mark_replayed(self, key: str, at: datetime, to: str) -> None: ...


# ----------------------------------------------------------------------------- the whole


class Store(Protocol):
    """One document store (one database of one server), in parts."""

    @property
    def name(self) -> str:
        """The database's name (the customers' histories live in a schema of this name)."""
        ...

    @property
    def orders(self) -> OrderStore: ...
    @property
    def rollups(self) -> RollupStore: ...
    @property
    def demand(self) -> DemandHistory: ...
    @property
    def spikes(self) -> SpikeStore: ...
    @property
    def alerts(self) -> SpikeAlerts: ...
    @property
    def leases(self) -> Leases: ...
    @property
    def status(self) -> StreamStatus: ...
    @property
    def dead_letters(self) -> DeadLetters: ...

    def drop(self) -> None:
        """Deletes every document of this store (tests and benchmarks)."""
        ...

    def close(self) -> None: ...
