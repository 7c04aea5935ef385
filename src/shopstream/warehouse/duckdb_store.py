"""The embedded warehouse: one DuckDB file under the stack's data directory.

DuckDB allows one writing process per file, and a reader in another process blocks it: the
load and dbt open the file in turn (the DAG's `warehouse` pool has one slot), and the
dashboard never opens it. After each successful build the load publishes a serving copy of
the marts the dashboard reads (`serving.py`), swapped in atomically, so a reader never sees
a half-loaded day and never holds a lock the load needs (decision 33).
"""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from shopstream.config import Settings
from shopstream.failpoints import failpoint
from shopstream.warehouse.base import LOAD_COLUMNS, DayCounts, LoadRecord, WarehouseError
from shopstream.warehouse.lakeday import LakeDay, ensure_present, lake_dataset, local_paths

__all__ = ["DuckDBWarehouse", "connect_file"]

DDL = """
create schema if not exists raw;
create schema if not exists audit;
create table if not exists raw.orders (
    key blob, value blob, topic varchar, "partition" integer, "offset" bigint,
    kafka_timestamp timestamp, order_id varchar, created_at timestamp, dt date not null,
    _load_id varchar not null, _loaded_at timestamp not null
);
create table if not exists audit.loads (
    load_id varchar primary key, day date not null, started_at timestamptz not null,
    status varchar not null, files integer, lake_rows bigint, lake_orders bigint,
    raw_rows bigint, raw_orders bigint, customers bigint, products bigint,
    load_seconds double, build_seconds double, message varchar, updated_at timestamptz
);
"""


def connect_file(path: Path, read_only: bool = False, wait_s: float = 120) -> Any:
    """A connection to the file, waiting while another process holds it (then a clear error)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise WarehouseError(
                    f"the DuckDB warehouse {path} is in use by another process ({exc}); "
                    "only one load or dbt run may write it at a time"
                ) from exc
            time.sleep(0.5)


class DuckDBWarehouse:
    name = "duckdb"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.duckdb_path
        self.con = connect_file(self.path)
        # a day's insert of ~8,640 small files takes about a third less time and memory when DuckDB
        # need not keep the files' row order; nothing reads raw rows in insertion order
        self.con.execute("set preserve_insertion_order = false")
        self.con.execute("set enable_progress_bar = false")  # not into the DAG's task logs

    def ensure_tables(self) -> None:
        self.con.execute(DDL)

    def replace_day(self, lake: LakeDay, load_id: str) -> int:
        self.con.execute("begin transaction")
        try:
            self.con.execute("delete from raw.orders where dt = ?", [lake.day])
            if lake.files:
                self._insert_day(lake, load_id)
            failpoint("warehouse.replace_day.before_commit")
            self.con.execute("commit")
        except BaseException:
            self.con.execute("rollback")
            raise
        return lake.rows

    def _insert_day(self, lake: LakeDay, load_id: str) -> None:
        """Exactly the files of `lake`: read by DuckDB itself when local (its parallel Parquet
        reader), else through an Arrow dataset (S3)."""
        insert = """insert into raw.orders select key, value, topic, "partition", "offset",
                cast(kafka_timestamp as timestamp), order_id, cast(created_at as timestamp),
                ?, ?, now()::timestamp from {source}"""
        paths = local_paths(lake)
        if paths is not None:
            ensure_present(self.settings, lake)  # every file still there, or a clear error
            self.con.execute(insert.format(source="read_parquet(?)"), [lake.day, load_id, paths])
            return
        self.con.register("lake_day", lake_dataset(self.settings, lake))
        try:
            self.con.execute(insert.format(source="lake_day"), [lake.day, load_id])
        finally:
            self.con.unregister("lake_day")

    def replace_dimensions(self, customers: pa.Table, products: pa.Table, at: datetime) -> None:
        self.con.execute("begin transaction")
        try:
            for name, table in (("customers", customers), ("products", products)):
                self.con.register("snapshot", table)
                self.con.execute(
                    f"create or replace table raw.{name} as "  # noqa: S608 (our table names)
                    "select *, ?::timestamptz as _snapshot_at from snapshot",
                    [at],
                )
                self.con.unregister("snapshot")
            self.con.execute("commit")
        except BaseException:
            self.con.execute("rollback")
            raise

    def day_counts(self, day: date) -> DayCounts:
        rows, orders = self.con.execute(
            "select count(*), count(distinct order_id) from raw.orders where dt = ?", [day]
        ).fetchall()[0]
        return DayCounts(int(rows), int(orders))

    def save_load(self, record: LoadRecord) -> None:
        row = record.row()
        marks = ", ".join("?" for _ in LOAD_COLUMNS)
        self.con.execute(
            f"insert or replace into audit.loads ({', '.join(LOAD_COLUMNS)}) values ({marks})",  # noqa: S608
            [row[c] for c in LOAD_COLUMNS],
        )

    def _records(self, where: str, params: list[Any]) -> list[LoadRecord]:
        rows = self.con.execute(
            f"select {', '.join(LOAD_COLUMNS)} from audit.loads {where}",  # noqa: S608
            params,
        ).fetchall()
        return [LoadRecord(**dict(zip(LOAD_COLUMNS, r, strict=True))) for r in rows]

    def latest_load(self, day: date) -> LoadRecord | None:
        found = self._records("where day = ? order by started_at desc limit 1", [day])
        return found[0] if found else None

    def recent_loads(self, limit: int) -> list[LoadRecord]:
        return self._records("order by started_at desc limit ?", [limit])

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(self.con.execute(sql, list(params)).fetchall())

    def frame(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        return self.con.execute(sql, list(params)).df()

    def close(self) -> None:
        self.con.close()
