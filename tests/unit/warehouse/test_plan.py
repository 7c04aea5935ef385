"""Which days a run loads (`plan`): its own day unless built, every complete lake day not
built since the first, oldest first and bounded; and when a retry may trust dbt's results.

Real DuckDB and a real file-sink log on disk (a lake of empty files: only the log is read)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from shopstream.config import Settings
from shopstream.streaming.committed import Manifest, committed_files
from shopstream.warehouse import open_warehouse
from shopstream.warehouse.base import LoadRecord
from shopstream.warehouse.dbt import NodeResult, run_results_path
from shopstream.warehouse.load import BuildResult, _key, _previous, day_statuses, plan
from tests.utils.spikes import write_watermark

FIRST = date(2026, 3, 1)


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        cache_dir=tmp_path / "cache",
        lake_uri=(tmp_path / "lake").as_uri(),
        warehouse_duckdb_path=tmp_path / "wh.duckdb",
        warehouse_grace_minutes=30,
    )


def _lake(settings: Settings, days: list[date]) -> None:
    """A file-sink log naming one file per day (batch 0)."""
    table = Path(settings.lake.removeprefix("file://")) / "orders"
    (table / "_spark_metadata").mkdir(parents=True, exist_ok=True)
    entries = [
        json.dumps({"path": f"file:{table}/dt={d}/part-{i}.parquet", "action": "add"})
        for i, d in enumerate(days)
    ]
    (table / "_spark_metadata" / "0").write_text("v1\n" + "\n".join(entries) + "\n")


def _table(settings: Settings) -> Path:
    return Path(settings.lake.removeprefix("file://")) / "orders"


def _commit(settings: Settings, batch: int, paths: list[str]) -> None:
    entries = [json.dumps({"path": f"file:{_table(settings)}/{p}", "action": "add"}) for p in paths]
    (_table(settings) / "_spark_metadata" / str(batch)).write_text("v1\n" + "\n".join(entries))


def _compacted(settings: Settings, day: date) -> None:
    """The day's manifest, replacing every file the log names for it (as its stage does)."""
    replaces = frozenset(p for p in committed_files(str(_table(settings))) if f"/dt={day}/" in p)
    doc = Manifest(
        str(day), "v1", ((f"file:{_table(settings)}/_compacted/dt={day}/v1/part-0.parquet", 1),),
        replaces, 1, datetime(2026, 4, 1, tzinfo=UTC).isoformat(),
    ).to_json()  # fmt: skip
    (_table(settings) / "_compacted").mkdir(exist_ok=True)
    (_table(settings) / "_compacted" / f"dt={day}.json").write_text(json.dumps(doc))


def _status(settings: Settings, day: date, status: str, minutes: int = 0) -> None:
    if not (_table(settings) / "_compacted" / f"dt={day}.json").exists():
        _compacted(settings, day)  # a stage compacts a complete day before loading it
    at = datetime.now(UTC) + timedelta(minutes=minutes)  # after its manifest (real times)
    with open_warehouse(settings) as wh:
        wh.ensure_tables()
        wh.save_load(LoadRecord(uuid.uuid4().hex, day, at, status=status))


def _days(first: int, last: int) -> list[date]:
    return [FIRST + timedelta(days=i) for i in range(first, last + 1)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = _settings(tmp_path)
    _lake(s, _days(0, 9))  # March 1..10 hold data
    return s


def _plan(settings: Settings, day: date, **kwargs: object) -> list[date]:
    with open_warehouse(settings) as wh:
        return plan(settings, wh, day, FIRST, **kwargs).days  # type: ignore[arg-type]


def test_a_first_start_loads_every_complete_day_in_one_run(settings: Settings) -> None:
    # complete through March 7 (its end plus 30 min of grace has passed), not March 8
    write_watermark(
        Path(settings.lake.removeprefix("file://")), datetime(2026, 3, 8, 0, 45, tzinfo=UTC)
    )
    assert _plan(settings, FIRST) == _days(0, 6)
    assert _plan(settings, date(2026, 3, 4)) == _days(0, 6)


def test_built_days_are_left_and_a_failed_or_mismatched_one_is_taken_again(
    settings: Settings,
) -> None:
    write_watermark(Path(settings.lake.removeprefix("file://")), datetime(2026, 3, 20, tzinfo=UTC))
    for day in _days(0, 9):
        _status(settings, day, "built")
    _status(settings, date(2026, 3, 3), "failed", minutes=1)  # the latest load counts
    _status(settings, date(2026, 3, 5), "mismatch", minutes=1)
    _status(settings, date(2026, 3, 6), "loaded", minutes=-1)  # older than its built load
    assert _plan(settings, date(2026, 3, 10)) == [date(2026, 3, 3), date(2026, 3, 5)]
    # the run's own day, built: only when reloading (a manual or cleared run)
    assert date(2026, 3, 10) not in _plan(settings, date(2026, 3, 10))
    assert _plan(settings, date(2026, 3, 10), reload=True) == [
        date(2026, 3, 3), date(2026, 3, 5), date(2026, 3, 10)
    ]  # fmt: skip
    with open_warehouse(settings) as wh:
        statuses = day_statuses(wh, FIRST)
    assert statuses[date(2026, 3, 3)] == "failed"
    assert statuses[date(2026, 3, 6)] == "built"


def test_a_built_day_sent_orders_after_its_load_is_loaded_again(settings: Settings) -> None:
    """A file committed to a built day after its compaction (no manifest replaces it) makes
    the next run load the day again; with compaction off nothing tells, as before."""
    write_watermark(Path(settings.lake.removeprefix("file://")), datetime(2026, 3, 20, tzinfo=UTC))
    for day in _days(0, 9):
        _status(settings, day, "built")
    assert _plan(settings, date(2026, 3, 10)) == []
    _commit(settings, 1, ["dt=2026-03-04/part-late.parquet", "dt=2026-03-25/part-new.parquet"])
    with open_warehouse(settings) as wh:
        found = plan(settings, wh, date(2026, 3, 10), FIRST)
    assert found.days == [date(2026, 3, 4)]  # March 25 is not complete
    assert "2026-03-04 again" in found.reason
    _compacted(settings, date(2026, 3, 4))  # folded in by a compaction outside its stage
    assert _plan(settings, date(2026, 3, 10)) == [date(2026, 3, 4)]  # still not loaded
    _status(settings, date(2026, 3, 4), "built")  # its reload: compaction, then the load
    assert _plan(settings, date(2026, 3, 10)) == []
    _commit(settings, 2, ["dt=2026-03-05/part-late.parquet"])
    off = settings.model_copy(update={"lake_compaction": False, "lake_log_retention_hours": 0})
    assert _plan(off, date(2026, 3, 10)) == []
    assert _plan(settings, date(2026, 3, 10)) == [date(2026, 3, 5)]


def test_the_run_s_own_day_is_planned_even_without_lake_data(settings: Settings) -> None:
    """A day with no committed file is still loaded by its own run (zero rows, reconciled),
    but never pulled in by another day's run."""
    write_watermark(Path(settings.lake.removeprefix("file://")), datetime(2026, 3, 20, tzinfo=UTC))
    for day in _days(0, 9):
        _status(settings, day, "built")
    assert _plan(settings, date(2026, 3, 15)) == [date(2026, 3, 15)]
    assert date(2026, 3, 15) not in _plan(settings, date(2026, 3, 16))


def test_days_before_the_first_are_never_planned(settings: Settings) -> None:
    write_watermark(Path(settings.lake.removeprefix("file://")), datetime(2026, 3, 20, tzinfo=UTC))
    with open_warehouse(settings) as wh:
        found = plan(settings, wh, date(2026, 3, 9), date(2026, 3, 8)).days
    assert found == [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]


def test_a_long_outage_is_taken_in_bounded_runs_oldest_first_with_the_run_s_day(
    settings: Settings,
) -> None:
    write_watermark(Path(settings.lake.removeprefix("file://")), datetime(2026, 3, 20, tzinfo=UTC))
    assert _plan(settings, date(2026, 3, 1), limit=4) == _days(0, 3)
    assert _plan(settings, date(2026, 3, 9), limit=4) == [*_days(0, 2), date(2026, 3, 9)]


def test_no_watermark_means_only_the_run_s_own_day(settings: Settings) -> None:
    assert _plan(settings, date(2026, 3, 4)) == [date(2026, 3, 4)]


def _ran(settings: Settings, invocation: str, statuses: dict[str, str]) -> None:
    path = run_results_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    results = [
        {"unique_id": uid, "status": st, "execution_time": 0.5, "message": None}
        for uid, st in statuses.items()
    ]
    path.write_text(json.dumps({"metadata": {"invocation_id": invocation}, "results": results}))


def _ledger(settings: Settings, **doc: object) -> None:
    (run_results_path(settings).parent / "shopstream_build.json").write_text(json.dumps(doc))


def test_a_retry_trusts_only_the_same_loads_finished_build(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    day1, day2 = date(2026, 3, 1), date(2026, 3, 2)
    loads = [LoadRecord("a1", day1, datetime.now(UTC)), LoadRecord("b1", day2, datetime.now(UTC))]
    key = _key(loads)
    nodes = {"model.shopstream.fct_orders": "success", "test.shopstream.unique_x.abc": "fail"}
    _ran(settings, "inv-1", nodes)
    _ledger(settings, key=key, state="finished", invocation_id="inv-1")
    found = _previous(settings, key)
    assert found is not None
    assert {n.name: n.status for n in found} == {"fct_orders": "success", "unique_x": "fail"}
    assert _previous(settings, _key(loads[:1])) is None  # other days
    reloaded = [loads[0], LoadRecord("b2", day2, datetime.now(UTC))]
    assert _previous(settings, _key(reloaded)) is None  # a day loaded again since
    _ledger(settings, key=key, state="died", invocation_id=None)
    assert _previous(settings, key) is None  # dbt killed: its results are not ours
    _ledger(settings, key=key, state="snapshot", invocation_id=None)
    assert _previous(settings, key) is None  # a build started over (its dimensions taken)
    _ledger(settings, key=key, state="finished", invocation_id="inv-0")
    assert _previous(settings, key) is None  # results of another invocation


def test_a_build_s_summary_names_each_model_and_the_failed_tests() -> None:
    nodes = [
        NodeResult("model.shopstream.stg_orders", "success", 1.0, ""),
        NodeResult("model.shopstream.fct_orders", "error", 0.2, "boom"),
        NodeResult("model.shopstream.customer_daily", "skipped", 0.0, ""),
        NodeResult("test.shopstream.unique_fct_orders_order_id.1a2b", "fail", 0.1, "Got 1"),
        NodeResult("test.shopstream.not_null_x.3c4d", "pass", 0.1, ""),
        NodeResult("test.shopstream.not_null_y.5e6f", "skipped", 0.0, ""),
    ]
    result = BuildResult([date(2026, 3, 1)], "build", 3.2, nodes)
    summary = result.summary()
    assert summary["models"] == {
        "stg_orders": "success", "fct_orders": "error", "customer_daily": "skipped"
    }  # fmt: skip
    assert summary["tests"] == {"passed": 1, "failed": ["unique_fct_orders_order_id"], "skipped": 1}
    assert [n.name for n in result.failed] == ["fct_orders", "unique_fct_orders_order_id"]
    table = result.table()
    assert "model fct_orders" in table
    assert "boom" in table
    assert "tests: 1 of 3 passed" in table
