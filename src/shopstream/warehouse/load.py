"""A day's load, step by step (each a DAG task and a CLI command; `load_day` runs them all).

1. `is_complete`: the lake watermark is past the end of D (UTC) plus the grace period.
2. `load_raw`: exactly D's committed lake files into `raw.orders`, replacing D's rows.
3. `snapshot_dimensions`: customers and products from PostgreSQL into `raw.*`.
4. `reconcile`: D's raw rows and distinct orders equal the lake's, or the run fails.
5. `transform`: `dbt build` for D (staging -> marts, then every data test).
6. `publish`: the serving copy the dashboard reads (DuckDB only).
A rerun of any step for D is safe: every write replaces what D had.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

from shopstream.config import Settings
from shopstream.streaming.committed import watermark_passed
from shopstream.warehouse import open_warehouse
from shopstream.warehouse.base import LoadRecord, Warehouse, WarehouseError
from shopstream.warehouse.dbt import run_dbt
from shopstream.warehouse.dimension_snapshot import read_dimensions
from shopstream.warehouse.lakeday import lake_orders, read_lake_day
from shopstream.warehouse.serving import publish

__all__ = [
    "ReconcileError",
    "Reconciliation",
    "is_complete",
    "load_day",
    "load_raw",
    "mark_built",
    "reconcile",
    "snapshot_dimensions",
    "transform",
]

log = logging.getLogger(__name__)
Report = Callable[[str], None]


class ReconcileError(WarehouseError):
    """The raw table does not hold exactly the lake's rows of the day."""


@dataclass(frozen=True)
class Reconciliation:
    day: date
    lake_rows: int
    lake_orders: int
    raw_rows: int
    raw_orders: int

    @property
    def ok(self) -> bool:
        return (self.lake_rows, self.lake_orders) == (self.raw_rows, self.raw_orders)

    def describe(self) -> str:
        verdict = "reconciled" if self.ok else "MISMATCH"
        return (
            f"{self.day}: {verdict}: raw.orders holds {self.raw_rows:,} rows and "
            f"{self.raw_orders:,} distinct orders; the lake's committed files hold "
            f"{self.lake_rows:,} rows and {self.lake_orders:,} distinct orders"
        )


def _now() -> datetime:
    return datetime.now(UTC)


def is_complete(settings: Settings, day: date) -> tuple[bool, str]:
    end = datetime.combine(day + timedelta(days=1), dtime.min, UTC)
    grace = timedelta(minutes=settings.warehouse_grace_minutes)
    return watermark_passed(settings, end + grace, f"lake day {day} (UTC, plus {grace} of grace)")


def load_raw(settings: Settings, wh: Warehouse, day: date) -> LoadRecord:
    """Step 2: D's committed lake rows into raw.orders (replacing D's); the audit record."""
    started = time.monotonic()
    lake = read_lake_day(settings, day)
    record = LoadRecord(
        load_id=uuid.uuid4().hex, day=day, started_at=_now(), files=len(lake.files),
        lake_rows=lake.rows,
    )  # fmt: skip
    wh.ensure_tables()
    try:
        wh.replace_day(lake, record.load_id)
    except Exception as exc:
        _save(wh, record, "failed", f"load failed: {exc}")
        raise
    record.load_seconds = round(time.monotonic() - started, 3)
    _save(wh, record, "loaded", f"loaded {lake.size}")
    log.info("raw load day=%s files=%d rows=%d", day, len(lake.files), lake.rows)
    return record


def _save(wh: Warehouse, record: LoadRecord, status: str, message: str) -> None:
    record.status, record.message, record.updated_at = status, message, _now()
    wh.save_load(record)


def _latest(wh: Warehouse, day: date) -> LoadRecord:
    record = wh.latest_load(day)
    if record is None:
        raise WarehouseError(
            f"{day} has not been loaded: run `shopstream warehouse raw --date {day}`"
        )
    return record


def snapshot_dimensions(
    settings: Settings, wh: Warehouse, day: date | None = None
) -> tuple[int, int]:
    """Step 3: customers and products as PostgreSQL has them now; their counts."""
    customers, products, at = read_dimensions(settings.postgres_url)
    wh.ensure_tables()
    wh.replace_dimensions(customers, products, at)
    if day is not None and (record := wh.latest_load(day)) is not None:
        record.customers, record.products = customers.num_rows, products.num_rows
        wh.save_load(record)
    return customers.num_rows, products.num_rows


def reconcile(settings: Settings, wh: Warehouse, day: date) -> Reconciliation:
    """Step 4: the lake's committed rows and distinct orders of D (read again, now) against
    raw.orders of D."""
    record = _latest(wh, day)
    lake = read_lake_day(settings, day)
    orders = lake_orders(settings, lake)
    counts = wh.day_counts(day)
    result = Reconciliation(day, lake.rows, orders, counts.rows, counts.orders)
    record.lake_rows, record.lake_orders = lake.rows, orders
    record.raw_rows, record.raw_orders = counts.rows, counts.orders
    if not result.ok:
        _save(wh, record, "mismatch", result.describe())
        raise ReconcileError(
            result.describe() + ". Rerun the day's load (`shopstream warehouse load --date "
            f"{day}`); if it persists, the lake changed outside Spark"
        )
    _save(wh, record, "reconciled", result.describe())
    return result


def transform(settings: Settings, day: date) -> float:
    """Step 5: `dbt build` for D; seconds taken. No warehouse connection is held meanwhile
    (DuckDB: dbt needs the file to itself)."""
    with open_warehouse(settings) as wh:
        record = _latest(wh, day)
    started = time.monotonic()
    status, message = "built", record.message
    try:
        run_dbt(settings, "build", day=day)
    except WarehouseError as exc:
        status, message = "failed", str(exc)[:4000]
        raise
    finally:
        record.build_seconds = round(time.monotonic() - started, 3)
        with open_warehouse(settings) as wh:
            _save(wh, record, status, message)
    return record.build_seconds


def mark_built(settings: Settings, wh: Warehouse, day: date) -> LoadRecord:
    """After the DAG's dbt tasks: D's reconciled load is built; build_seconds is the time
    since it reconciled (the dbt tasks ran in between)."""
    record = _latest(wh, day)
    if record.status not in ("reconciled", "built"):
        raise WarehouseError(
            f"{day}'s latest load is {record.status!r}, not reconciled: rerun the day's run"
        )
    if record.status == "reconciled" and record.updated_at is not None:
        record.build_seconds = round((_now() - record.updated_at).total_seconds(), 3)
    _save(wh, record, "built", record.message)
    return record


def load_day(settings: Settings, day: date, report: Report = log.info) -> LoadRecord:
    """Every step for D in order, without waiting for completeness (the caller checks)."""
    with open_warehouse(settings) as wh:
        record = load_raw(settings, wh, day)
        report(f"{day}: raw.orders <- {record.files} files, {record.lake_rows:,} rows")
        customers, products = snapshot_dimensions(settings, wh, day)
        report(f"{day}: raw.customers {customers:,}, raw.products {products:,}")
        report(reconcile(settings, wh, day).describe())
    seconds = transform(settings, day)
    report(f"{day}: dbt build passed in {seconds:.1f} s")
    if publish(settings):
        report("published the dashboard's serving copy")
    with open_warehouse(settings) as wh:
        return _latest(wh, day)
