"""What the dashboard's History page reads from the warehouse, and how it reads it safely.

On DuckDB the dashboard never opens the warehouse file (a reader there would block the
load): after each successful build `publish` writes the served marts into a new file and
swaps it in with one rename, so the page always reads a complete, reconciled state and the
load never waits for it. On Snowflake the page queries the marts directly (Snowflake
isolates readers from the load's transactions).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from shopstream.config import Settings
from shopstream.warehouse import open_warehouse
from shopstream.warehouse.duckdb_store import DuckDBWarehouse, connect_file

__all__ = ["History", "publish", "serving_path"]

# table in the serving copy -> the query over the warehouse that fills it
SERVED = {
    "marts.daily_category_sales": "select * from marts.daily_category_sales",
    "marts.customer_lifetime_value": (
        "select * from marts.customer_lifetime_value order by lifetime_value desc, customer_id "
        "limit 1000"
    ),
    # from the customers' totals and the daily sales: never a pass over every order
    "marts.summary": (
        "select coalesce(sum(t.orders), 0) as orders, coalesce(sum(t.lifetime_value), 0) "
        "as revenue, count(*) as customers, (select min(order_date) from "
        "marts.daily_category_sales) as first_day, (select max(order_date) from "
        "marts.daily_category_sales) as last_day from marts.customer_totals as t"
    ),
    "audit.loads": "select * from audit.loads order by started_at desc limit 500",
}


def serving_path(settings: Settings) -> Path:
    return settings.duckdb_path.with_name(settings.duckdb_path.stem + ".serving.duckdb")


def publish(settings: Settings) -> bool:
    """Writes and swaps in the DuckDB serving copy; False on other warehouses."""
    if settings.warehouse != "duckdb":
        return False

    target = serving_path(settings)
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    wh = DuckDBWarehouse(settings)
    try:
        wh.con.execute(f"attach '{tmp}' as serving")
        wh.con.execute("create schema serving.marts; create schema serving.audit")
        for table, query in SERVED.items():
            wh.con.execute(f"create table serving.{table} as {query}")
        wh.con.execute("detach serving")
    finally:
        wh.close()
    os.replace(tmp, target)
    return True


class History:
    """Reads for the History page (pandas frames), from the serving copy or Snowflake."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def available(self) -> bool:
        if self.settings.warehouse == "duckdb":
            return serving_path(self.settings).exists()
        return True

    def frame(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        if self.settings.warehouse == "duckdb":
            con = connect_file(serving_path(self.settings), read_only=True, wait_s=5)
            try:
                return con.execute(sql, list(params)).df()
            finally:
                con.close()
        with open_warehouse(self.settings) as wh:
            return wh.frame(sql, params)

    def summary(self) -> dict[str, Any]:
        """Orders, revenue, customers and the first and last day in the warehouse."""
        duckdb = self.settings.warehouse == "duckdb"
        rows = self.frame("select * from marts.summary" if duckdb else SERVED["marts.summary"])
        return rows.iloc[0].to_dict() if len(rows) else {}

    def category_sales(self, first: date, last: date) -> pd.DataFrame:
        return self.frame(
            "select order_date, category, orders, customers, units, revenue "
            "from marts.daily_category_sales where order_date between ? and ? "
            "order by order_date, category",
            (first, last),
        )

    def top_customers(self, limit: int = 20) -> pd.DataFrame:
        return self.frame(
            "select customer_id, name, segment, country, orders, active_days, units, "
            "lifetime_value, average_order_value, first_order_at, last_order_at "
            "from marts.customer_lifetime_value order by lifetime_value desc, customer_id "
            "limit ?",
            (limit,),
        )

    def loads(self, limit: int = 30) -> pd.DataFrame:
        return self.frame(
            "select day, status, files, lake_rows, raw_rows, lake_orders, raw_orders, "
            "load_seconds, build_seconds, started_at, message from audit.loads "
            "order by started_at desc limit ?",
            (limit,),
        )
