"""The values the document store hands out and takes in: plain dataclasses, no store types.

Named by `store.protocols` (the Protocols every caller uses) and built by the implementation
(`store.ferretdb` and the modules behind it). Nothing here reads or writes a store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np

from shopstream.domain.windows import Span

__all__ = [
    "LABELS",
    "AlertDelivery",
    "AlertState",
    "AlertStatus",
    "BatchRecord",
    "BatchSummary",
    "DayDemand",
    "DaySpikes",
    "DeadLetter",
    "EmergingSpikes",
    "Freshness",
    "History",
    "Kpis",
    "ProductRow",
    "QueryLag",
    "QueryProgress",
    "SpikeLabel",
    "Totals",
    "Trend",
]


# ----------------------------------------------------------------------------- the Overview


@dataclass(frozen=True)
class Totals:
    orders: int = 0
    units: int = 0
    sales_cents: int = 0
    customers: int = 0

    @property
    def average_order_cents(self) -> float | None:
        return self.sales_cents / self.orders if self.orders else None


@dataclass(frozen=True)
class Kpis:
    window: str
    current: Totals
    previous: Totals | None  # None for all time
    span: Span | None
    previous_span: Span | None


@dataclass
class Trend:
    """Orders and sales per bucket, and sales per category (the top N, the rest as OTHER)."""

    granularity: str
    starts: list[datetime]
    orders: list[int]
    sales_cents: list[int]
    categories: dict[str, list[int]] = field(default_factory=dict)  # name -> cents per bucket

    @property
    def filling(self) -> int:
        """The index of the bucket still filling (the last)."""
        return len(self.starts) - 1


@dataclass(frozen=True)
class ProductRow:
    product_id: int
    name: str
    category: str
    orders: int
    units: int
    sales_cents: int


@dataclass(frozen=True)
class Freshness:
    newest_order_at: datetime | None
    last_batch_at: datetime | None
    last_batch_records: int
    last_batch_s: float | None


# ----------------------------------------------------------------------------- the stream


@dataclass(frozen=True)
class QueryProgress:
    """A streaming query's last published progress."""

    name: str
    batch_id: int | None
    trigger_at: datetime | None
    input_rows: int
    duration_ms: int
    end_offsets: dict[str, dict[str, int]]  # topic -> partition -> the offset read up to


@dataclass(frozen=True)
class QueryLag:
    name: str
    batch_id: int | None
    trigger_at: datetime | None
    input_rows: int
    duration_ms: int
    lag: int | None  # records in Kafka not yet read by the query (None: unknown)
    partitions: dict[str, int] = field(default_factory=dict)  # partition -> lag


@dataclass(frozen=True)
class BatchSummary:
    finished_at: datetime | None
    records: int
    new_orders: int
    dead_letters: int
    duration_s: float | None
    recent: list[dict[str, Any]]  # the last batches with records: at, records, e2e_p50_s, ...


@dataclass(frozen=True)
class BatchRecord:
    """A finished micro-batch as the job's ledger holds it."""

    query_id: str
    batch_id: int
    attempts: int
    started_at: datetime
    finished_at: datetime
    duration_s: float
    records: int
    outcome: dict[str, Any]  # the rest of what the batch reported (`BatchRecorder.finish`)


@dataclass(frozen=True)
class DeadLetter:
    """A record the job could not process, keyed by where it sits in Kafka."""

    key: str  # topic:partition:offset
    reason: str
    detail: str
    payload: str  # the record's value, as received
    failed_at: datetime
    replayed_at: datetime | None = None
    replayed_to: str | None = None  # topic:partition:offset of its replay


# ----------------------------------------------------------------------------- demand, spikes


@dataclass
class DayDemand:
    """One business day's demand, product by product."""

    day: date
    products: list[dict[str, Any]] = field(default_factory=list)  # sorted by product_id
    hours: list[int] = field(default_factory=lambda: [0] * 24)  # store units by local hour

    @property
    def units(self) -> int:
        return sum(p["units"] for p in self.products)

    @property
    def orders(self) -> int:
        """Orders with the product, summed over products (an order with two products counts
        twice; the day's distinct orders are in `rollup_day`)."""
        return sum(p["orders"] for p in self.products)

    @property
    def revenue_cents(self) -> int:
        return sum(p["revenue_cents"] for p in self.products)


@dataclass
class History:
    """Daily units and orders of every known product over consecutive days (oldest first)."""

    start: date
    product_ids: np.ndarray  # (N,)
    units: np.ndarray  # (N, days) int
    loaded: np.ndarray  # (days,) bool: the day is in the history (else its units are 0)
    store_units: np.ndarray  # (days,) the store's units
    store_hours: np.ndarray  # (days, 24) the store's units by local hour
    first_sale: dict[int, date]
    orders: np.ndarray | None = None  # (N, days) int: orders with the product; 0 before
    orders_from: date | None = None  # the first day whose orders were read (None: none were)
    store_events: dict[date, float] = field(default_factory=dict)  # day -> store level:
    #   days the whole store surged, left out of every product's later history
    excluded: dict[int, set[date]] = field(default_factory=dict)  # product id -> days labelled
    #   expected (a promotion, a known event), left out of that product's later history

    @property
    def days(self) -> int:
        return int(self.units.shape[1])

    def column(self, day: date) -> int:
        return (day - self.start).days

    def day_of(self, column: int) -> date:
        return self.start + timedelta(days=column)


LABELS = ("expected", "wrong")  # a known event (left out of the baseline) / a false alarm


@dataclass(frozen=True)
class SpikeLabel:
    """What a user said of a detected spike: `expected` (a promotion, a known event: the day
    is left out of the product's later baselines) or `wrong` (not a spike: a false alarm)."""

    day: str
    product_id: int
    label: str
    note: str = ""
    by: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class DaySpikes:
    """A day's detected spikes (`spikes`: the detector's documents, one per product)."""

    day: str
    spikes: list[dict[str, Any]]
    rule: dict[str, Any]
    evaluated: int
    detected_at: datetime | None
    store: dict[str, Any] = field(default_factory=dict)  # level, event, products_used, margin


@dataclass(frozen=True)
class EmergingSpikes:
    """Today's provisional spikes as of the last intraday check (`spikes` as `DaySpikes`')."""

    day: str
    as_of: datetime | None
    local_time: str
    spikes: list[dict[str, Any]]
    count: int
    store_level: float | None
    rule: dict[str, Any]


# ----------------------------------------------------------------------------- spike alerts

AlertState = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class AlertDelivery:
    """One spike alert in the delivery ledger: a product's (or the store's) alert of a day.

    `alert` is the alert as posted (`spikes.alerts`), kept so that a retry posts the same
    thing; `status` is "pending" from just before its first POST until the POST's outcome is
    recorded. `confirmed_at`: when the daily run found the spike a product was alerted for as
    emerging that day (that daily spike is not posted again)."""

    key: str  # the product id, or "store" for the day's store event
    kind: str  # "spike", "emerging" or "store_event"
    status: AlertState
    attempts: int  # POSTs tried so far, over every run
    first_seen_at: datetime
    alert: dict[str, Any]
    delivered_at: datetime | None = None
    last_error: str | None = None
    confirmed_at: datetime | None = None


@dataclass(frozen=True)
class AlertStatus:
    """The spike alerts' delivery, for the Pipeline health page (one document)."""

    last_attempt_at: datetime | None = None
    last_delivered_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    undelivered: dict[str, int] = field(default_factory=dict)  # day -> alerts not delivered
    expired: int = 0  # alerts never delivered whose day left the retry window (given up)

    @property
    def pending(self) -> int:
        """Alerts not delivered yet (retried by the next run)."""
        return sum(self.undelivered.values())
