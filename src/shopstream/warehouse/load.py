"""The load of lake days, step by step (the CLI's commands and the DAG's tasks run these).

1. `is_complete`: the lake watermark is past the end of D (UTC) plus the grace period;
   `plan`: the days a run loads (its own, and every complete day not built yet);
   `compact`: the complete day's lake files rewritten as a few (streaming/compaction.py).
2. `load_raw`: exactly D's committed lake files into `raw.orders`, replacing D's rows.
3. `snapshot_dimensions`: customers and products from PostgreSQL into `raw.*`.
4. `reconcile`: D's raw rows and distinct orders equal the lake's, or the run fails.
5. `transform`: one `dbt build` for all the run's days (staging -> marts, then every data
   test), each node's result from dbt's run_results.json; a retry re-runs only what failed.
6. `publish`: the serving copy the dashboard reads (DuckDB only).
Each day is loaded, reconciled and recorded in `audit.loads` on its own; a rerun of any step
is safe: every write replaces what its days had.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from shopstream.config import Settings
from shopstream.streaming.committed import (
    lake_days,
    manifest_times,
    partition_key,
    read_watermark,
    unreplaced_files,
    watermark_passed,
)
from shopstream.streaming.compaction import (
    compact_at_risk,
    compact_day,
    vacuum,
)
from shopstream.warehouse import open_warehouse
from shopstream.warehouse.base import LoadRecord, Warehouse, WarehouseError
from shopstream.warehouse.dbt import (
    NodeResult,
    describe_days,
    read_run_results,
    run_dbt,
    work_dir,
)
from shopstream.warehouse.dimension_snapshot import read_dimensions
from shopstream.warehouse.lakeday import lake_orders, read_lake_day
from shopstream.warehouse.serving import publish

__all__ = [
    "BuildResult",
    "Plan",
    "ReconcileError",
    "Reconciliation",
    "build",
    "day_statuses",
    "is_complete",
    "load_day",
    "load_days",
    "load_raw",
    "mark_built",
    "plan",
    "reconcile",
    "snapshot_dimensions",
    "stage",
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


def _due(settings: Settings, day: date) -> datetime:
    """When lake day D is complete: the end of D (UTC) plus the grace period."""
    grace = timedelta(minutes=settings.warehouse_grace_minutes)
    return datetime.combine(day + timedelta(days=1), dtime.min, UTC) + grace


def is_complete(settings: Settings, day: date) -> tuple[bool, str]:
    grace = timedelta(minutes=settings.warehouse_grace_minutes)
    what = f"lake day {day} (UTC, plus {grace} of grace)"
    return watermark_passed(settings, _due(settings, day), what)


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
    settings: Settings, wh: Warehouse, days: date | list[date] | None = None
) -> tuple[int, int]:
    """Step 3: customers and products as PostgreSQL has them now (counts recorded on the
    days' loads); their counts."""
    customers, products, at = read_dimensions(settings.postgres_url)
    wh.ensure_tables()
    wh.replace_dimensions(customers, products, at)
    for day in [days] if isinstance(days, date) else days or []:
        if (record := wh.latest_load(day)) is not None:
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


@dataclass
class BuildResult:
    """One dbt invocation over a set of days: how it ran, how long, and each node's result."""

    days: list[date]
    mode: str  # build | retry (only what failed before) | skipped (nothing had failed)
    seconds: float
    nodes: list[NodeResult]

    @property
    def failed(self) -> list[NodeResult]:
        return [n for n in self.nodes if not n.ok and n.status != "skipped"]

    def summary(self) -> dict[str, object]:
        """What the DAG's build task returns (its XCom): each model's status, the tests'."""
        tests = [n for n in self.nodes if n.kind == "test"]
        return {
            "days": [d.isoformat() for d in self.days],
            "mode": self.mode,
            "seconds": self.seconds,
            "models": {n.name: n.status for n in self.nodes if n.kind == "model"},
            "tests": {
                "passed": sum(n.ok for n in tests),
                "failed": sorted(n.name for n in tests if not n.ok and n.status != "skipped"),
                "skipped": sum(n.status == "skipped" for n in tests),
            },
        }

    def table(self) -> str:
        """One line per model, and per test that did not pass, in dbt's order."""
        lines = [f"{'node':52} {'status':8} {'seconds':>8}"]
        for n in self.nodes:
            if n.kind == "model" or not n.ok:
                note = f"  {n.message}" if not n.ok and n.message else ""
                lines.append(f"{n.kind + ' ' + n.name:52} {n.status:8} {n.seconds:8.2f}{note}")
        tests = [n for n in self.nodes if n.kind == "test"]
        lines.append(f"tests: {sum(n.ok for n in tests)} of {len(tests)} passed")
        return "\n".join(lines)


def _ledger(settings: Settings) -> Path:
    """Which days the last build in dbt's target directory was for, and whether it finished
    (run_results.json is written only at the end: a killed dbt leaves the previous one)."""
    return work_dir(settings) / "target" / "shopstream_build.json"


def _key(records: list[LoadRecord]) -> str:
    """What a build's results belong to: its days and each day's load (a reload is new)."""
    return ",".join(sorted(f"{r.day}:{r.load_id}" for r in records))


def _previous(settings: Settings, key: str) -> list[NodeResult] | None:
    """The last build's results when it was for exactly these loads and finished, else None."""
    try:
        ledger = json.loads(_ledger(settings).read_text())
    except (OSError, ValueError):
        return None
    invocation, nodes = read_run_results(settings)
    if (
        ledger.get("key") != key
        or ledger.get("state") != "finished"
        or invocation is None
        or ledger.get("invocation_id") != invocation
    ):
        return None
    return nodes


def _note(settings: Settings, key: str, state: str, invocation: str | None = None) -> None:
    ledger = _ledger(settings)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.write_text(json.dumps({"key": key, "state": state, "invocation_id": invocation}))


def _invoke(settings: Settings, days: list[date], key: str, command: str) -> None:
    """dbt `command` for the days, the ledger saying whether it left its own results: a dbt
    killed mid-way leaves the previous run_results.json (not ours: the retry builds all)."""
    earlier, _ = read_run_results(settings)
    _note(settings, key, "started")
    try:
        run_dbt(settings, command, days=days)
    finally:
        invocation, _ = read_run_results(settings)
        fresh = invocation is not None and invocation != earlier
        _note(settings, key, "finished" if fresh else "died", invocation if fresh else None)


def _dbt(
    settings: Settings, days: list[date], key: str, retry: bool
) -> tuple[str, list[NodeResult]]:
    """`dbt build` over the days, or on a retry only the nodes the same loads' last build did
    not finish (`dbt retry`); the mode and every node's latest result."""
    before = _previous(settings, key) if retry else None
    if before is not None and all(n.ok for n in before):
        return "skipped", before
    if before is not None:
        _invoke(settings, days, key, "retry")
        _, again = read_run_results(settings)
        latest = {n.unique_id: n for n in before} | {n.unique_id: n for n in again}
        return "retry", list(latest.values())
    _invoke(settings, days, key, "build")
    return "build", read_run_results(settings)[1]


def _reconciled(record: LoadRecord) -> bool:
    """The load reconciled (a build since may have failed: its retry needs no new load)."""
    if record.status in ("reconciled", "built"):
        return True
    counted = record.raw_rows is not None and record.lake_orders is not None
    return (
        record.status == "failed"
        and counted
        and (record.raw_rows, record.raw_orders) == (record.lake_rows, record.lake_orders)
    )


def transform(settings: Settings, days: list[date], retry: bool = False) -> BuildResult:
    """Step 5: one `dbt build` for every day in `days` (each loaded and reconciled first).
    No warehouse connection is held meanwhile (DuckDB: dbt needs the file to itself). Each
    day's load is then `built`, or `failed` with dbt's failures."""
    days = sorted(set(days))
    with open_warehouse(settings) as wh:
        records = [_latest(wh, d) for d in days]
    if unready := [r for r in records if not _reconciled(r)]:
        raise WarehouseError(_unready(unready[0]))
    started = time.monotonic()
    status, mode, error = "built", "build", None
    nodes: list[NodeResult] = []
    try:
        mode, nodes = _dbt(settings, days, _key(records), retry)
    except WarehouseError as exc:
        status, error = "failed", exc
        nodes = read_run_results(settings)[1]
    seconds = round(time.monotonic() - started, 3)
    with open_warehouse(settings) as wh:
        for record in records:
            record.build_seconds = seconds
            _save(wh, record, status, record.message if error is None else str(error)[:4000])
    result = BuildResult(days, mode, seconds, nodes)
    if error is not None:
        names = ", ".join(f"{n.kind} {n.name} ({n.status})" for n in result.failed[:8])
        raise WarehouseError(f"{error}\nfailed: {names or 'see the output above'}") from error
    return result


def _unready(record: LoadRecord) -> str:
    return (
        f"{record.day}'s latest load is {record.status!r}, not reconciled: load it again "
        f"(`shopstream warehouse stage --date {record.day}`, or clear its load_day task)"
    )


def build(
    settings: Settings, days: list[date], retry: bool = False, report: Report = log.info
) -> BuildResult:
    """After the days' loads: dimensions, one dbt build over the days that reconciled, the
    serving copy; then, if a day had not reconciled, a WarehouseError naming it (the others
    are built: one bad day does not hold back the rest).

    On a retry whose loads' last build finished, the dimensions are not snapshotted again:
    `dbt retry` then re-runs the failed nodes over the inputs the build had. The lake's
    upkeep follows, whether the build succeeded or not."""
    try:
        return _build(settings, days, retry, report)
    finally:
        if settings.lake_compaction:
            _lake_upkeep(settings, report)


def _build(settings: Settings, days: list[date], retry: bool, report: Report) -> BuildResult:
    with open_warehouse(settings) as wh:
        records = [_latest(wh, d) for d in sorted(set(days))]
    ready = [r for r in records if _reconciled(r)]
    unready = [r for r in records if not _reconciled(r)]
    for record in unready:
        report(f"not built: {_unready(record)}")
    if not ready:
        raise WarehouseError(f"no day to build: {_unready(unready[0])}")
    if not (retry and _previous(settings, _key(ready)) is not None):
        _note(settings, _key(ready), "snapshot")  # earlier results are not this build's
        with open_warehouse(settings) as wh:
            customers, products = snapshot_dimensions(settings, wh, [r.day for r in ready])
        report(f"raw.customers {customers:,}, raw.products {products:,}")
    built = [r.day for r in ready]
    result = transform(settings, built, retry=retry)
    report(result.table())
    report(f"dbt {result.mode} for {describe_days(built)}: {result.seconds:.1f} s")
    if publish(settings):
        report("published the dashboard's serving copy")
    if unready:
        names = ", ".join(f"{r.day} ({r.status})" for r in unready)
        raise WarehouseError(f"built {describe_days(built)}; not built: {names}")
    return result


def _lake_upkeep(settings: Settings, report: Report) -> None:
    """Partitions whose files would leave the log uncompacted compacted, then the lake's
    unreadable versions and replaced raw files deleted (decision 49). Run after every build,
    failed or not; a failure is reported as an error but does not fail a build that
    succeeded (the next build tries again, and the streaming job keeps its whole log at its
    next start while a file is at risk)."""
    try:
        done, failed = compact_at_risk(settings)
        for compaction in done:
            report(f"lake upkeep: compacted {compaction.message}")
        for failure in failed:
            report(f"lake upkeep: COMPACTION FAILED for {failure}")
        result = vacuum(settings)
        if result.versions or result.raw_days:
            report(f"lake vacuum: {result.describe()}")
    except OSError as exc:
        log.error("lake upkeep failed (the next build tries again): %s", exc)
        report(f"lake upkeep failed (the next build tries again): {exc}")


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


def compact(settings: Settings, day: date, report: Report = log.info) -> None:
    """Step 1b: a complete day's lake files rewritten as a few (`SHOPSTREAM_LAKE_COMPACTION`,
    on by default; files committed since the last compaction folded in)."""
    if settings.lake_compaction and is_complete(settings, day)[0]:
        report(compact_day(settings, day).message)


def stage(
    settings: Settings, wh: Warehouse, day: date, report: Report = log.info
) -> Reconciliation:
    """Steps 1b, 2 and 4 for D (the DAG's `load_day`): compaction, the raw load, then its
    reconciliation."""
    compact(settings, day, report)
    load_raw(settings, wh, day)
    return reconcile(settings, wh, day)


def load_day(settings: Settings, day: date, report: Report = log.info) -> LoadRecord:
    """Every step for D in order, without waiting for completeness (the caller checks)."""
    return load_days(settings, [day], report)[0]


def load_days(settings: Settings, days: list[date], report: Report = log.info) -> list[LoadRecord]:
    """Every step for the days: each loaded and reconciled on its own, then one build."""
    days = sorted(set(days))
    with open_warehouse(settings) as wh:
        for day in days:
            compact(settings, day, report)
            record = load_raw(settings, wh, day)
            report(f"{day}: raw.orders <- {record.files} files, {record.lake_rows:,} rows")
            report(reconcile(settings, wh, day).describe())
    build(settings, days, report=report)
    with open_warehouse(settings) as wh:
        return [_latest(wh, day) for day in days]


@dataclass(frozen=True)
class Plan:
    days: list[date]  # oldest first
    reason: str


def day_statuses(wh: Warehouse, since: date) -> dict[date, str]:
    """Each day's latest load status, from `since` on."""
    rows = wh.query(
        "select day, status from (select day, status, row_number() over (partition by day "
        "order by started_at desc) as n from audit.loads where day >= ?) as latest where n = 1",
        (since,),
    )
    return {_as_date(day): str(status) for day, status in rows}


def latest_loads(wh: Warehouse, since: date) -> dict[date, tuple[str, datetime]]:
    """Each day's latest load (status, when it started), from `since` on."""
    rows = wh.query(
        "select day, status, started_at from (select day, status, started_at, row_number() "
        "over (partition by day order by started_at desc) as n from audit.loads where day >= ?) "
        "as latest where n = 1",
        (since,),
    )
    return {_as_date(day): (str(status), _as_utc(at)) for day, status, at in rows}


def _as_utc(value: object) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def plan(
    settings: Settings,
    wh: Warehouse,
    day: date,
    first: date,
    reload: bool = False,
    limit: int = 92,
) -> Plan:
    """The days a run for `day` loads: `day` itself unless it is built already (or `reload`),
    and every other complete lake day from `first` on that holds data and is not built:
    oldest first, at most `limit` (the next run takes the rest). A first start or an outage
    is then one run, not one run per day."""
    wh.ensure_tables()
    loads = latest_loads(wh, min(first, day))
    statuses = {d: status for d, (status, _) in loads.items()}
    mark = read_watermark(f"{settings.lake}/orders", settings)
    watermark = datetime.fromisoformat(mark["watermark"]) if mark else None
    complete = [
        d
        for d in lake_days(settings)
        if d >= first and watermark is not None and watermark >= _due(settings, d)
    ]
    pending = {d for d in complete if statuses.get(d) != "built"}
    late: set[date] = set()
    if settings.lake_compaction:
        # A built day was sent orders after its load (a backfill, a replayed dead letter)
        # when its log names a file its manifest does not replace, or when its manifest was
        # published after the load started (a compaction outside the day's stage folded such
        # files in: `compact_at_risk`, `lake compact`): loaded again (decision 49).
        table = f"{settings.lake}/orders"
        unloaded = {partition_key(part) for part in unreplaced_files(table, settings)}
        for part, published in manifest_times(table, settings).items():
            d = partition_key(part)
            if isinstance(d, date) and d in loads and published > loads[d][1]:
                unloaded.add(d)
        late = {d for d in complete if d in unloaded} - pending
        pending |= late
    if reload or statuses.get(day) != "built":
        pending.add(day)
    days = sorted(pending)
    if day in days and len(days) > limit:
        days = sorted([day, *[d for d in days if d != day][: limit - 1]])
    days = days[:limit]
    again = sorted(late & set(days))
    why = (
        f"{len(days)} day(s) to load: {describe_days(days)}"
        + (f" ({describe_days(again)} again: orders came after their load)" if again else "")
        if days
        else f"nothing to load: {day} and every complete lake day since {first} are built"
    )
    return Plan(days, why)
