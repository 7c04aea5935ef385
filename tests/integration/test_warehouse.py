"""The batch ELT into DuckDB over a lake written by the real landing query: exact raw, dimension
and mart tables, reruns, untouched neighbours, late orders, and loud reconciliation failures."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import psycopg
import pytest
import streamlit as st
from pyspark.sql import SparkSession
from streamlit.testing.v1 import AppTest

from shopstream import failpoints
from shopstream.config import Settings, settings_env
from shopstream.stack.airflow import DAGS_FOLDER, ensure_airflow
from shopstream.streaming.committed import lake_files
from shopstream.warehouse import open_warehouse
from shopstream.warehouse.base import WarehouseError
from shopstream.warehouse.dbt import read_run_results, run_dbt, work_dir
from shopstream.warehouse.lakeday import LakeError
from shopstream.warehouse.load import (
    ReconcileError,
    build,
    load_day,
    load_days,
    load_raw,
    reconcile,
    snapshot_dimensions,
    stage,
    transform,
)
from shopstream.warehouse.serving import History
from tests.integration.conftest import API_KEY, CUSTOMERS, PRODUCTS, job_settings
from tests.utils.airflow import DAG_TEST, dag_env, migrate, offline_env, run_python
from tests.utils.fakesnow import fakesnow_server
from tests.utils.spikes import write_watermark
from tests.utils.warehouse import SourceOrders, expected_marts, land, post_orders, produce_raw

pytestmark = pytest.mark.integration

BEFORE, DAY = "2025-06-01", "2025-06-02"  # days no other test writes


@pytest.fixture(scope="module")
def lake(
    spark: SparkSession, stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, SourceOrders]:
    tmp = tmp_path_factory.mktemp("warehouse")
    settings = job_settings(stack, tmp, warehouse_duckdb_path=tmp / "wh" / "shop.duckdb")
    source = SourceOrders()
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": API_KEY}, timeout=30) as api:
        post_orders(api, source, BEFORE, 40, seed=1)
        post_orders(api, source, DAY, 150, seed=2, resend=6)
    unknown = {
        "schema_version": 1, "order_id": str(uuid.uuid4()), "customer_id": 999_999,
        "created_at": f"{DAY}T12:00:00Z", "received_at": f"{DAY}T12:00:01Z",
        "items": [{"product_id": 1, "quantity": 1}],
    }  # fmt: skip
    produce_raw(settings, source, DAY, unknown)
    land(spark, settings)
    return settings, source


def _rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with open_warehouse(settings) as wh:
        return wh.query(sql)


def _of_day(settings: Settings, columns: str, mart: str, day: str) -> list[tuple[Any, ...]]:
    return _rows(settings, f"select {columns} from marts.{mart} where order_date = '{day}'")


def _table(settings: Settings, name: str, day: str, drop: tuple[str, ...] = ()) -> list[Any]:
    """A day's rows of a table (sorted, without the columns that name a load or a time)."""
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        cols = [c[0] for c in con.execute(f"describe {name}").fetchall() if c[0] not in drop]
        key = "dt" if name == "raw.orders" else "order_date"
        return sorted(
            con.execute(
                f"select {', '.join(map(repr, cols)).replace(chr(39), chr(34))} from {name} "
                f"where {key} = ?",
                [date.fromisoformat(day)],
            ).fetchall(),
            key=repr,
        )


def assert_day_exact(
    settings: Settings, source: SourceOrders, day: str, loaded: tuple[str, ...]
) -> None:
    """raw, dimension and mart tables of `day` against what was sent and PostgreSQL's prices
    (`loaded`: every day the warehouse holds, for the lifetime values)."""
    orders = source.of_day(day)
    # raw: every Kafka record of the day once, bytes untouched
    raw = _rows(
        settings, f'select value, topic, "partition", "offset" from raw.orders where dt = \'{day}\''
    )
    assert len(raw) == source.records[day]
    assert len({(r[1], r[2], r[3]) for r in raw}) == len(raw)
    api_values = [bytes(r[0]) for r in raw if bytes(r[0]) not in source.produced]
    assert len(api_values) == len(raw) - 1
    assert all(v.startswith(b'{"schema_version":1,"order_id":"') for v in api_values)
    with psycopg.connect(settings.postgres_url) as conn:  # other tests add customers
        for table in ("customers", "products"):
            (count,) = conn.execute(f"select count(*) from {table}").fetchone()  # type: ignore[misc]
            assert count >= {"customers": CUSTOMERS, "products": PRODUCTS}[table]
            assert _rows(settings, f"select count(*) from raw.{table}") == [(count,)]

    # marts: exactly what the orders and PostgreSQL's prices say
    want = expected_marts(settings, orders)
    facts = _of_day(settings, "order_id, customer_id, units, order_total", "fct_orders", day)
    assert {r[0]: (r[1], r[2], r[3]) for r in facts} == want.orders
    assert len(facts) == len(want.orders)  # resends count once
    assert _of_day(settings, "count(*)", "fct_order_lines", day) == [(want.lines,)]
    cats = _of_day(settings, "category, orders, units, revenue", "daily_category_sales", day)
    assert {(day, r[0]): (r[1], r[2], r[3]) for r in cats} == want.categories
    demand = _of_day(settings, "product_id, orders, units", "product_daily_demand", day)
    assert {(day, r[0]): (r[1], r[2]) for r in demand} == want.products
    rejects = _rows(settings, "select order_id, reject_reason from marts.order_rejects")
    assert rejects == [(source.rejects[day][0], "unknown customer 999999")]
    clv = dict(
        _rows(settings, "select customer_id, lifetime_value from marts.customer_lifetime_value")
    )
    totals: dict[int, Any] = {}
    everything = [o for d in loaded for o in source.of_day(d)]
    for cust, _, total in expected_marts(settings, everything).orders.values():
        totals[cust] = totals.get(cust, 0) + total
    assert clv == totals


MARTS = ("marts.fct_orders", "marts.fct_order_lines", "marts.daily_category_sales",
         "marts.product_daily_demand", "marts.order_rejects")  # fmt: skip
LOAD_COLUMNS = ("_load_id", "_loaded_at")


def test_a_day_loads_exactly_the_source_orders(lake: tuple[Settings, SourceOrders]) -> None:
    settings, source = lake
    record = load_day(settings, date.fromisoformat(BEFORE))
    assert record.status == "built"
    before = {t: _table(settings, t, BEFORE, LOAD_COLUMNS) for t in ("raw.orders", *MARTS)}

    record = load_day(settings, date.fromisoformat(DAY))
    assert record.status == "built", record.message
    assert (record.lake_rows, record.raw_rows) == (source.records[DAY], source.records[DAY])
    orders = source.of_day(DAY)
    assert record.lake_orders == record.raw_orders == len(orders) + 1  # + the unknown customer

    assert_day_exact(settings, source, DAY, loaded=(BEFORE, DAY))

    # loading DAY left BEFORE exactly as it was
    assert {t: _table(settings, t, BEFORE, LOAD_COLUMNS) for t in before} == before
    # DAY's dbt run parsed the project partially: the day is no --var (macros/day.sql)
    log = (work_dir(settings) / "logs" / "dbt.log").read_text()
    assert log.count("Unable to do partial parsing") == 1  # BEFORE's, the first run's

    # the dashboard's serving copy has the marts and the loads
    history = History(settings)
    assert history.available()
    assert int(history.summary()["orders"]) == len(orders) + len(source.of_day(BEFORE))
    loads = history.loads()
    assert list(loads["status"][:2]) == ["built", "built"]


def test_a_rerun_leaves_identical_tables(lake: tuple[Settings, SourceOrders]) -> None:
    settings, _ = lake
    tables = ("raw.orders", *MARTS)
    first = {t: _table(settings, t, DAY, LOAD_COLUMNS) for t in tables}
    assert all(first.values())
    load_day(settings, date.fromisoformat(DAY))
    assert {t: _table(settings, t, DAY, LOAD_COLUMNS) for t in tables} == first


def _warehouse_cli(settings: Settings, *args: str, failpoint: str = "") -> int:
    """`shopstream warehouse ...` as the DAG's tasks run it (a failpoint armed when given);
    its exit code (-9: killed)."""
    env = {**settings_env(settings), failpoints.ENV: failpoint}
    command = [sys.executable, "-m", "shopstream", "warehouse", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, -9), done.stdout[-2000:] + done.stderr[-3000:]
    return done.returncode


def test_a_load_killed_in_its_transaction_changes_nothing_and_its_retry_is_exact(
    lake: tuple[Settings, SourceOrders],
) -> None:
    """SIGKILL after the day's rows are deleted and inserted, before the commit: the day keeps
    its previous load's rows (ids and times included), the audit does not change, and the
    retry of the day's run leaves the tables an undisturbed run leaves."""
    settings, _ = lake
    day = date.fromisoformat(DAY)
    tables = ("raw.orders", *MARTS)
    undisturbed = {t: _table(settings, t, DAY, LOAD_COLUMNS) for t in tables}
    raw = _table(settings, "raw.orders", DAY)
    with open_warehouse(settings) as wh:
        before = wh.latest_load(day)
    assert before is not None

    killed = _warehouse_cli(
        settings, "raw", "--date", DAY, failpoint="warehouse.replace_day.before_commit"
    )
    assert killed == -9
    assert _table(settings, "raw.orders", DAY) == raw
    with open_warehouse(settings) as wh:
        after = wh.latest_load(day)
    assert after is not None
    assert (after.load_id, after.status) == (before.load_id, before.status)

    assert _warehouse_cli(settings, "load", "--date", DAY, "--force") == 0  # the retry
    assert {t: _table(settings, t, DAY, LOAD_COLUMNS) for t in tables} == undisturbed
    with open_warehouse(settings) as wh:
        retried = wh.latest_load(day)
    assert retried is not None
    assert retried.status == "built"
    assert retried.load_id != before.load_id


def history_page() -> None:
    from shopstream.dashboard.views import history

    history.render()


def test_the_history_page_shows_the_marts(
    lake: tuple[Settings, SourceOrders], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, source = lake
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_function(history_page, default_timeout=30)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.title[0].value == "History"
    shown = {m.label: m.value for m in at.metric}
    orders = len(source.of_day(BEFORE)) + len(source.of_day(DAY))
    assert shown["Orders"] == f"{orders:,}"
    assert shown["Days"] == "2"  # BEFORE and DAY
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # sales by category
    top = at.dataframe[0].value
    want = expected_marts(settings, [*source.of_day(BEFORE), *source.of_day(DAY)])
    totals: dict[int, Any] = {}
    for customer, _, total in want.orders.values():
        totals[customer] = totals.get(customer, 0) + total
    best = max(totals.items(), key=lambda kv: (kv[1], -kv[0]))
    assert int(top["Customer"].iloc[0]) == best[0]
    loads = at.dataframe[1].value
    assert set(loads["Day"]) == {BEFORE, DAY}
    assert set(loads["Status"]) == {"✅ built"}
    assert list(loads["Loaded rows"]) == list(loads["Lake rows"])
    st.cache_data.clear()


def test_a_late_order_is_picked_up_by_the_next_run_for_its_day(
    lake: tuple[Settings, SourceOrders], spark: SparkSession, api: httpx.Client
) -> None:
    settings, source = lake
    before = _table(settings, "marts.fct_orders", BEFORE, LOAD_COLUMNS)
    late = post_orders(api, source, DAY, 3, seed=9)
    land(spark, settings)  # committed to DAY after its first load
    record = load_day(settings, date.fromisoformat(DAY))
    facts = {
        r[0]
        for r in _rows(
            settings, f"select order_id from marts.fct_orders where order_date = '{DAY}'"
        )
    }
    assert {o["order_id"] for o in late} <= facts
    assert len(facts) == len(source.of_day(DAY))
    assert record.raw_rows == source.records[DAY]
    assert _table(settings, "marts.fct_orders", BEFORE, LOAD_COLUMNS) == before


def test_a_failed_data_test_fails_its_days_build_only(
    lake: tuple[Settings, SourceOrders],
) -> None:
    """A fact of DAY doubled: DAY's tests fail naming the test; BEFORE's (its own rows only)
    still pass."""
    settings, _ = lake
    with open_warehouse(settings) as wh:
        wh.query(
            f"insert into marts.fct_orders select * from marts.fct_orders "
            f"where order_date = '{DAY}' limit 1"
        )
        ((doubled,),) = wh.query("select max(rowid) from marts.fct_orders")
    try:
        with pytest.raises(WarehouseError) as failure:
            run_dbt(settings, "test", days=[date.fromisoformat(DAY)])
        assert "unique_fct_orders_order_id" in str(failure.value)
        assert DAY in str(failure.value)
        run_dbt(settings, "test", days=[date.fromisoformat(BEFORE)])
    finally:
        with open_warehouse(settings) as wh:
            wh.query(f"delete from marts.fct_orders where rowid = {doubled}")


def _value(**fields: Any) -> bytes:
    order = {
        "schema_version": 1, "order_id": str(uuid.uuid4()), "customer_id": 1,
        "created_at": "2025-06-03T10:00:00Z", "received_at": "2025-06-03T10:00:01Z",
        "items": [{"product_id": 1, "quantity": 2}],
    }  # fmt: skip
    return json.dumps({**order, **fields}).encode()


def test_records_that_cannot_be_facts_are_rejected_with_their_reason(
    stack: Settings, tmp_path: Path
) -> None:
    """Raw values the streaming job would dead-letter, straight into raw.orders: each parsed
    once by stg_orders and rejected with its reason; the valid one is a fact."""
    settings = stack.model_copy(update={"warehouse_duckdb_path": tmp_path / "rejects.duckdb"})
    day = date(2025, 6, 3)
    cases = {
        b"\xff not UTF-8": "the value is not JSON",
        b'{"order_id": "x", ': "the value is not JSON",
        b"[1, 2]": "no order_id",
        _value(customer_id="abc"): "no customer_id",
        _value(customer_id=999_999): "unknown customer 999999",
        _value(created_at="yesterday"): "no valid created_at",
        _value(items="none"): "no items",
        _value(items=[]): "no items",
        _value(items=[{"product_id": 1, "quantity": 1}, {"product_id": 99_999, "quantity": 1}]):
            "unknown product",
        _value(items=[{"product_id": 1, "quantity": 0}]): "a quantity is not a positive integer",
        _value(): None,
    }  # fmt: skip
    with open_warehouse(settings) as wh:
        wh.ensure_tables()
        for offset, value in enumerate(cases):
            wh.query(
                "insert into raw.orders values (null, ?, 'orders', 0, ?, now()::timestamp, null, "
                "null, ?, 'test', now()::timestamp)",
                (value, offset, day),
            )
        snapshot_dimensions(settings, wh)
    run_dbt(settings, "build", days=[day])
    with open_warehouse(settings) as wh:
        rejects = wh.query("select kafka_offset, reject_reason from marts.order_rejects")
        facts = wh.query("select kafka_offset, units from marts.fct_orders")
        accounted = wh.query("select raw_records, accounted from marts.order_reconciliation")
    reasons = list(cases.values())
    assert sorted(rejects) == [(i, r) for i, r in enumerate(reasons) if r is not None]
    assert facts == [(len(cases) - 1, 2)]
    assert accounted == [(len(cases), True)]


def test_the_dag_loads_a_day_in_airflow(
    lake: tuple[Settings, SourceOrders], tmp_path: Path
) -> None:
    """`dag.test()` of lake_to_warehouse for DAY into a new DuckDB file, BEFORE pending too:
    one run loads both days (each its own task, reconciled, audited), one dbt build, and the
    same exact tables as the CLI's load."""
    settings, source = lake
    settings = settings.model_copy(update={"warehouse_duckdb_path": tmp_path / "dag.duckdb"})
    lake_dir = Path(settings.lake.removeprefix("file://"))
    day_end = datetime.combine(date.fromisoformat(DAY) + timedelta(days=1), dtime.min, UTC)
    write_watermark(lake_dir, day_end + timedelta(hours=1))
    python = ensure_airflow(settings.cache_path).parent / "python"
    home = tmp_path / "airflow"
    shopstream = str(Path(sys.executable).parent / "shopstream")
    env = {
        **offline_env(home),
        **settings_env(settings),
        # the DAG's tasks exist from BEFORE on
        **dag_env(settings, shopstream, warehouse_start_date=BEFORE),
    }
    migrate(python.parent / "airflow", env, "warehouse")
    # a manual run's interval is the day before its logical date: DAY+1 00:00 runs DAY
    out = run_python(
        python,
        DAG_TEST % (str(DAGS_FOLDER), "lake_to_warehouse", day_end.isoformat()),
        env,
        timeout=900,
    )
    assert out["state"] == "success", out
    assert out["interval"][0].startswith(DAY)
    assert set(out["tasks"].values()) == {"success"}
    assert out["xcom"]["plan"] == [{"DAY": BEFORE}, {"DAY": DAY}]  # the pending day too
    built = out["xcom"]["build"]
    assert built["days"] == [BEFORE, DAY]
    assert built["mode"] == "build"
    assert set(built["models"].values()) == {"success"}
    assert {"fct_orders", "customer_daily", "customer_lifetime_value"} <= set(built["models"])
    assert built["tests"]["failed"] == []
    assert built["tests"]["passed"] > 10
    assert_day_exact(settings, source, DAY, loaded=(BEFORE, DAY))
    facts = _of_day(settings, "order_id, customer_id, units, order_total", "fct_orders", BEFORE)
    assert {r[0]: (r[1], r[2], r[3]) for r in facts} == expected_marts(
        settings, source.of_day(BEFORE)
    ).orders
    for day in (BEFORE, DAY):
        with open_warehouse(settings) as wh:
            record = wh.latest_load(date.fromisoformat(day))
        assert record is not None
        assert record.status == "built"
        assert record.raw_rows == source.records[day]


def test_snowflake_loads_and_builds_the_same_day(
    lake: tuple[Settings, SourceOrders], tmp_path: Path
) -> None:
    """The Snowflake warehouse against fakesnow's server: PUT + COPY (checked per file), the
    same dbt build, reconciled, and the same exact marts as DuckDB's."""
    settings, source = lake
    with fakesnow_server(tmp_path / "fakesnow.log") as snowflake:
        settings = settings.model_copy(
            update={**snowflake, "data_dir": tmp_path / "data"}  # its own dbt work dir
        )
        record = load_day(settings, date.fromisoformat(DAY))
        assert record.status == "built", record.message
        assert record.raw_rows == record.lake_rows == source.records[DAY]
        assert record.raw_orders == len(source.of_day(DAY)) + 1
        assert_day_exact(settings, source, DAY, loaded=(DAY,))
        again = load_day(settings, date.fromisoformat(DAY))  # a rerun: the same rows
        assert (again.raw_rows, again.status) == (record.raw_rows, "built")
        assert _of_day(settings, "count(*)", "fct_orders", DAY) == [(len(source.of_day(DAY)),)]
        history = History(settings)
        assert int(history.summary()["orders"]) == len(source.of_day(DAY))
        assert list(history.loads()["status"][:2]) == ["built", "built"]


BRUTE_CLV = (
    "select customer_id, count(*), count(distinct order_date), sum(units), sum(order_total), "
    "min(created_at), max(created_at) from marts.fct_orders group by customer_id"
)
KEPT_CLV = (
    "select customer_id, orders, active_days, units, lifetime_value, first_order_at, "
    "last_order_at from marts.customer_lifetime_value"
)


def test_lifetime_values_stay_exact_when_a_day_is_rebuilt_without_some_orders(
    lake: tuple[Settings, SourceOrders], tmp_path: Path
) -> None:
    """customer_lifetime_value is kept incrementally (the customers a run's days touch): after
    two days in one catch-up, and after DAY is rebuilt with half its orders gone, it equals
    a brute-force pass over every fact, customers whose only orders left included."""
    settings, _ = lake
    settings = settings.model_copy(update={"warehouse_duckdb_path": tmp_path / "clv.duckdb"})
    records = load_days(settings, [date.fromisoformat(BEFORE), date.fromisoformat(DAY)])
    assert [r.status for r in records] == ["built", "built"]
    before = sorted(_rows(settings, KEPT_CLV))
    assert before == sorted(_rows(settings, BRUTE_CLV))
    with open_warehouse(settings) as wh:
        wh.query(f"delete from raw.orders where dt = '{DAY}' and \"offset\" % 2 = 0")
    result = transform(settings, [date.fromisoformat(DAY)])
    assert result.mode == "build"
    after = sorted(_rows(settings, KEPT_CLV))
    assert after == sorted(_rows(settings, BRUTE_CLV))
    assert after != before
    assert {r[0] for r in before} - {r[0] for r in after}  # some customers left entirely
    assert _rows(settings, "select count(*) from marts.customers_replaced") == [(0,)]


def test_a_retried_build_runs_only_what_failed(
    lake: tuple[Settings, SourceOrders], tmp_path: Path
) -> None:
    """A data test fails the build (its downstream skipped); once fixed, `--retry` runs dbt
    retry: the failed test and the skipped nodes only, and the day is built."""
    settings, _ = lake
    settings = settings.model_copy(update={"warehouse_duckdb_path": tmp_path / "retry.duckdb"})
    day = date.fromisoformat(BEFORE)
    load_days(settings, [day])
    with open_warehouse(settings) as wh:  # a customer the day does not touch, twice
        for _ in range(2):
            wh.query(
                "insert into marts.customer_totals select -1, first_order_at, last_order_at, "
                "orders, active_days, units, lifetime_value from marts.customer_totals limit 1"
            )
    with pytest.raises(WarehouseError) as failure:
        transform(settings, [day])
    assert "unique_customer_totals_customer_id" in str(failure.value)
    with open_warehouse(settings) as wh:
        assert wh.latest_load(day).status == "failed"  # type: ignore[union-attr]
        wh.query("delete from marts.customer_totals where customer_id = -1")
    _, failed_run = read_run_results(settings)
    skipped = {n.unique_id for n in failed_run if n.status == "skipped"}
    assert "model.shopstream.customer_lifetime_value" in skipped
    result = transform(settings, [day], retry=True)
    assert result.mode == "retry"
    _, retried = read_run_results(settings)
    ran = {n.unique_id for n in retried}
    assert "model.shopstream.customer_lifetime_value" in ran
    assert any(u.startswith("test.shopstream.unique_customer_totals_customer_id") for u in ran)
    assert "model.shopstream.fct_orders" not in ran  # it had passed: not run again
    assert ran <= skipped | {n.unique_id for n in failed_run if not n.ok}
    assert set(result.summary()["models"].values()) == {"success"}  # type: ignore[union-attr]
    with open_warehouse(settings) as wh:
        assert wh.latest_load(day).status == "built"  # type: ignore[union-attr]
    again = transform(settings, [day], retry=True)  # nothing failed: nothing to run
    assert again.mode == "skipped"


def test_a_day_that_did_not_reconcile_holds_back_only_itself(
    lake: tuple[Settings, SourceOrders], tmp_path: Path
) -> None:
    """A run's build with one day mismatched: the other day is built, then the build fails
    naming the bad day (which the next run plans again)."""
    settings, source = lake
    settings = settings.model_copy(update={"warehouse_duckdb_path": tmp_path / "one.duckdb"})
    before, day = date.fromisoformat(BEFORE), date.fromisoformat(DAY)
    with open_warehouse(settings) as wh:
        stage(settings, wh, before)
        load_raw(settings, wh, day)
        wh.query(f"delete from raw.orders where dt = '{DAY}' and \"offset\" % 10 = 3")
        with pytest.raises(ReconcileError):
            reconcile(settings, wh, day)
    with pytest.raises(WarehouseError) as failure:
        build(settings, [before, day])
    assert f"not built: {DAY} (mismatch)" in str(failure.value)
    with open_warehouse(settings) as wh:
        assert wh.latest_load(before).status == "built"  # type: ignore[union-attr]
        assert wh.latest_load(day).status == "mismatch"  # type: ignore[union-attr]
    facts = _of_day(settings, "count(*)", "fct_orders", BEFORE)
    assert facts == [(len(source.of_day(BEFORE)),)]
    assert _of_day(settings, "count(*)", "fct_orders", DAY) == [(0,)]


def test_rows_missing_from_the_raw_table_fail_reconciliation(
    lake: tuple[Settings, SourceOrders],
) -> None:
    settings, source = lake
    with open_warehouse(settings) as wh:
        wh.query(f"delete from raw.orders where dt = '{DAY}' and \"offset\" % 10 = 3")
        with pytest.raises(ReconcileError) as failure:
            reconcile(settings, wh, date.fromisoformat(DAY))
        assert wh.latest_load(date.fromisoformat(DAY)).status == "mismatch"  # type: ignore[union-attr]
    message = str(failure.value)
    assert DAY in message
    assert f"{source.records[DAY]:,} rows" in message  # the lake's number
    (left,) = _rows(settings, f"select count(*) from raw.orders where dt = '{DAY}'")[0]
    assert f"{left:,} rows" in message  # and the warehouse's


def test_a_committed_file_gone_from_the_lake_fails_the_load(
    lake: tuple[Settings, SourceOrders], tmp_path: Path
) -> None:
    settings, _ = lake
    victim = lake_files(f"{settings.lake}/orders", day=BEFORE)[0]  # compacted or not
    path = Path(victim.removeprefix("file:"))
    path.rename(tmp_path / path.name)  # the last test of the module: the lake is not reused
    with open_warehouse(settings) as wh, pytest.raises(LakeError) as failure:
        load_raw(settings, wh, date.fromisoformat(BEFORE))
    assert f"dt={BEFORE}" in str(failure.value)
    assert "gone" in str(failure.value)
