"""The warehouse interface: what a load needs from DuckDB or Snowflake, and the tables it owns.

Tables written by the load (dbt writes everything else, from these):
- `raw.orders`: one row per committed lake row of a day, untransformed: `key`, `value` (the
  Kafka record's bytes), `topic`, `partition`, `offset`, `kafka_timestamp`, `order_id`,
  `created_at` (as the lake parsed them), `dt` (the lake day), `_load_id`, `_loaded_at`.
  A load replaces its day's rows in one transaction.
- `raw.customers`, `raw.products`: the PostgreSQL tables as they were at `_snapshot_at`,
  replaced whole by each load.
- `audit.loads`: one row per load of a day: what the lake held, what the raw table holds,
  whether they reconciled, and how long the steps took (the History page's "last loads").
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa

from shopstream.warehouse.lakeday import LakeDay

__all__ = ["LOAD_COLUMNS", "DayCounts", "LoadRecord", "Warehouse", "WarehouseError"]


class WarehouseError(RuntimeError):
    """The warehouse refused or failed a step; the message says which and what to do."""


@dataclass(frozen=True)
class DayCounts:
    rows: int
    orders: int  # distinct non-null order ids


@dataclass
class LoadRecord:
    """A row of `audit.loads`."""

    load_id: str
    day: date
    started_at: datetime
    status: str = "loading"  # loading | loaded | reconciled | mismatch | built | failed
    files: int = 0
    lake_rows: int = 0
    lake_orders: int | None = None  # counted when it reconciles
    raw_rows: int | None = None
    raw_orders: int | None = None
    customers: int | None = None
    products: int | None = None
    load_seconds: float | None = None
    build_seconds: float | None = None
    message: str = ""
    updated_at: datetime | None = field(default=None)

    def row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


LOAD_COLUMNS = tuple(f.name for f in fields(LoadRecord))


class Warehouse(Protocol):
    """One warehouse connection. Every write is idempotent for its day."""

    name: str

    def ensure_tables(self) -> None: ...

    def replace_day(self, lake: LakeDay, load_id: str) -> int:
        """Replaces `raw.orders` rows of `lake.day` with exactly the lake's; rows written."""
        ...

    def replace_dimensions(self, customers: pa.Table, products: pa.Table, at: datetime) -> None: ...

    def day_counts(self, day: date) -> DayCounts: ...

    def save_load(self, record: LoadRecord) -> None:
        """Inserts or replaces the record's row (by load_id)."""
        ...

    def latest_load(self, day: date) -> LoadRecord | None: ...

    def recent_loads(self, limit: int) -> list[LoadRecord]: ...

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...

    def frame(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame: ...

    def close(self) -> None: ...
