"""The batch ELT into DuckDB over a lake written by the real landing query: exact raw, dimension
and mart tables, reruns, untouched neighbours, late orders, and loud reconciliation failures."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from pyspark.sql import SparkSession

from shopstream.config import Settings
from shopstream.streaming.committed import committed_files
from shopstream.warehouse import open_warehouse
from shopstream.warehouse.lakeday import LakeError
from shopstream.warehouse.load import ReconcileError, load_day, load_raw, reconcile
from shopstream.warehouse.serving import History
from tests.integration.conftest import API_KEY, CUSTOMERS, PRODUCTS, job_settings
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


def _of_day(settings: Settings, columns: str, mart: str) -> list[tuple[Any, ...]]:
    return _rows(settings, f"select {columns} from marts.{mart} where order_date = '{DAY}'")


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

    # raw: every Kafka record of the day once, bytes untouched
    raw = _rows(
        settings, f'select value, topic, "partition", "offset" from raw.orders where dt = \'{DAY}\''
    )
    assert len(raw) == source.records[DAY]
    assert len({(r[1], r[2], r[3]) for r in raw}) == len(raw)
    api_values = [bytes(r[0]) for r in raw if bytes(r[0]) not in source.produced]
    assert len(api_values) == len(raw) - 1
    assert all(v.startswith(b'{"schema_version":1,"order_id":"') for v in api_values)
    assert _rows(settings, "select count(*) from raw.customers") == [(CUSTOMERS,)]
    assert _rows(settings, "select count(*) from raw.products") == [(PRODUCTS,)]

    # marts: exactly what the orders and PostgreSQL's prices say
    want = expected_marts(settings, orders)
    facts = _of_day(settings, "order_id, customer_id, units, order_total", "fct_orders")
    assert {r[0]: (r[1], r[2], r[3]) for r in facts} == want.orders
    assert len(facts) == len(want.orders)  # resends count once
    assert _of_day(settings, "count(*)", "fct_order_lines") == [(want.lines,)]
    cats = _of_day(settings, "category, orders, units, revenue", "daily_category_sales")
    assert {(DAY, r[0]): (r[1], r[2], r[3]) for r in cats} == want.categories
    demand = _of_day(settings, "product_id, orders, units", "product_daily_demand")
    assert {(DAY, r[0]): (r[1], r[2]) for r in demand} == want.products
    rejects = _rows(settings, "select order_id, reject_reason from marts.order_rejects")
    assert rejects == [(source.rejects[DAY][0], "unknown customer 999999")]
    clv = dict(
        _rows(settings, "select customer_id, lifetime_value from marts.customer_lifetime_value")
    )
    totals: dict[int, Any] = {}
    for cust, _, total in expected_marts(
        settings, [*source.of_day(BEFORE), *orders]
    ).orders.values():
        totals[cust] = totals.get(cust, 0) + total
    assert clv == totals

    # loading DAY left BEFORE exactly as it was
    assert {t: _table(settings, t, BEFORE, LOAD_COLUMNS) for t in before} == before

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
    victim = committed_files(f"{settings.lake}/orders", day=BEFORE)[0]
    path = Path(victim.removeprefix("file:"))
    path.rename(tmp_path / path.name)  # the last test of the module: the lake is not reused
    with open_warehouse(settings) as wh, pytest.raises(LakeError) as failure:
        load_raw(settings, wh, date.fromisoformat(BEFORE))
    assert f"dt={BEFORE}" in str(failure.value)
    assert "gone" in str(failure.value)
