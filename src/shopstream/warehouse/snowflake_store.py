"""Snowflake: the lake goes up with PUT (a local lake) or through an external stage (S3), then
`COPY INTO ... FILE_FORMAT=(TYPE=PARQUET) MATCH_BY_COLUMN_NAME=CASE_INSENSITIVE`.

COPY's own per-file result is checked, never trusted blindly: every file of the day must be
reported `LOADED` with `rows_loaded` equal to its Parquet footer's row count and no errors
(Airflow's stock COPY operator does not look at `rows_loaded`). COPY lands in a transient
table of the load; the day's rows are then replaced in `raw.orders` in one transaction, so a
failed COPY leaves the day as it was. `FORCE=TRUE`: the load history must not skip a file
that an earlier load of the day already copied (the day's rows were deleted since).

Exercised against fakesnow's server in the tests; only a real account exercises the external
stage (`SHOPSTREAM_SNOWFLAKE_LAKE_STAGE`, `FILES=`), TLS, roles and warehouses (docs/warehouse.md).
"""

from __future__ import annotations

import logging
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import snowflake.connector
from snowflake.connector.errors import DatabaseError

from shopstream.config import Settings
from shopstream.failpoints import failpoint
from shopstream.warehouse.base import LOAD_COLUMNS, DayCounts, LoadRecord, WarehouseError
from shopstream.warehouse.lakeday import LakeDay, LakeFile

__all__ = ["SnowflakeWarehouse", "check_copy"]

log = logging.getLogger(__name__)

STAGE = "raw.lake_stage"
LAKE_COLUMNS = (
    'key binary, value binary, topic varchar, "partition" integer, "offset" bigint, '
    "kafka_timestamp timestamp_ntz, order_id varchar, created_at timestamp_ntz"
)
DDL = (
    "create schema if not exists raw",
    "create schema if not exists audit",
    f"create stage if not exists {STAGE}",
    f"create table if not exists raw.orders ({LAKE_COLUMNS}, dt date not null, "
    "_load_id varchar not null, _loaded_at timestamp_ntz not null)",
    "create table if not exists audit.loads (load_id varchar primary key, day date not null, "
    "started_at timestamp_tz not null, status varchar not null, files integer, "
    "lake_rows bigint, lake_orders bigint, raw_rows bigint, raw_orders bigint, "
    "customers bigint, products bigint, load_seconds double, build_seconds double, "
    "message varchar, updated_at timestamp_tz)",
)
DIMENSIONS = {
    "customers": "id bigint, name varchar, email varchar, city varchar, country varchar, "
    "segment varchar, signup_at timestamp_tz, updated_at timestamp_tz",
    "products": "id bigint, name varchar, category varchar, brand varchar, "
    "price number(12, 2), currency varchar, popularity integer, created_at timestamp_tz, "
    "updated_at timestamp_tz",
}


def check_copy(results: list[dict[str, Any]], files: dict[str, int], day: date) -> None:
    """Raises unless COPY reported every file loaded with its footer's rows and no errors.

    `results`: COPY's rows (file, status, rows_parsed, rows_loaded, errors_seen, first_error);
    `files`: file name -> rows its Parquet footer holds.
    """
    seen: dict[str, dict[str, Any]] = {}
    for row in results:
        seen[str(row["file"]).rsplit("/", 1)[-1]] = row
    problems = []
    for name, rows in sorted(files.items()):
        got = seen.get(name)
        if got is None:
            problems.append(f"{name}: not in COPY's result")
        elif str(got["status"]).upper() != "LOADED":
            problems.append(f"{name}: status {got['status']} ({got.get('first_error')})")
        elif int(got["rows_loaded"]) != rows or int(got.get("errors_seen") or 0) != 0:
            problems.append(
                f"{name}: {got['rows_loaded']} rows loaded, {got.get('errors_seen')} errors, "
                f"the file holds {rows}"
            )
    extra = sorted(set(seen) - set(files))
    if extra:
        problems.append(f"COPY loaded files that are not the day's: {extra[:3]}")
    if problems:
        raise WarehouseError(
            f"COPY INTO for {day} did not load the lake's files exactly; the day was left as "
            f"it was. {len(problems)} problem(s): " + "; ".join(problems[:5])
        )


def _name(f: LakeFile) -> str:
    return f.path.rsplit("/", 1)[-1]


class SnowflakeWarehouse:
    name = "snowflake"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if not settings.snowflake_account or not settings.snowflake_user:
            raise WarehouseError(
                "SHOPSTREAM_WAREHOUSE=snowflake needs SHOPSTREAM_SNOWFLAKE_ACCOUNT, _USER and "
                "_PASSWORD (and usually _WAREHOUSE and _ROLE)"
            )
        options: dict[str, Any] = {
            "account": settings.snowflake_account,
            "user": settings.snowflake_user,
            "password": (
                settings.snowflake_password.get_secret_value()
                if settings.snowflake_password
                else None
            ),
            "database": settings.snowflake_database,
            "warehouse": settings.snowflake_warehouse,
            "role": settings.snowflake_role,
            "protocol": settings.snowflake_protocol,
            "paramstyle": "qmark",
            "login_timeout": 60,
            "network_timeout": 300,  # a connector retrying an HTTP 500 otherwise hangs
            "application": "shopstream",
        }
        if settings.snowflake_host:
            options["host"] = settings.snowflake_host
        if settings.snowflake_port:
            options["port"] = settings.snowflake_port
        try:
            self.con = snowflake.connector.connect(
                **{k: v for k, v in options.items() if v is not None}
            )
        except DatabaseError as exc:
            raise WarehouseError(
                f"cannot connect to Snowflake account {settings.snowflake_account!r} as "
                f"{settings.snowflake_user!r}: {exc}"
            ) from exc
        self.cur = self.con.cursor()

    def _exec(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        self.cur.execute(sql, params)
        return list(self.cur.fetchall())

    def _dicts(self, sql: str) -> list[dict[str, Any]]:
        self.cur.execute(sql)
        names = [d.name.lower() for d in self.cur.description]
        return [dict(zip(names, row, strict=True)) for row in self.cur.fetchall()]

    def ensure_tables(self) -> None:
        for sql in DDL:
            self._exec(sql)
        for name, columns in DIMENSIONS.items():
            self._exec(
                f"create table if not exists raw.{name} ({columns}, _snapshot_at timestamp_tz)"
            )

    def _copy(
        self, table: str, source: str, files: dict[str, int], day: date, extra: str = ""
    ) -> None:
        results = self._dicts(
            f"copy into {table} from {source} {extra} file_format=(type=parquet) "
            "match_by_column_name=case_insensitive force=true"
        )
        check_copy(results, files, day)

    def _stage_local(self, paths: list[Path], prefix: str) -> str:
        for path in paths:
            self._exec(f"put 'file://{path}' @{STAGE}/{prefix}/ auto_compress=false overwrite=true")
        return f"@{STAGE}/{prefix}/"

    def replace_day(self, lake: LakeDay, load_id: str) -> int:
        incoming = f"raw.incoming_{load_id}"
        self._exec(f"create or replace transient table {incoming} ({LAKE_COLUMNS})")
        try:
            if lake.files:
                self._copy_day(lake, incoming, load_id)
            self._exec("begin")
            self._exec("delete from raw.orders where dt = ?", (lake.day,))
            self._exec(
                f'insert into raw.orders select key, value, topic, "partition", "offset", '  # noqa: S608
                f"kafka_timestamp, order_id, created_at, ?, ?, current_timestamp()::timestamp_ntz "
                f"from {incoming}",
                (lake.day, load_id),
            )
            failpoint("warehouse.replace_day.before_commit")
            self._exec("commit")
        except BaseException:
            self.con.rollback()
            raise
        finally:
            self._exec(f"drop table if exists {incoming}")
        return lake.rows

    def _copy_day(self, lake: LakeDay, incoming: str, load_id: str) -> None:
        files = {_name(f): f.rows for f in lake.files}
        if self.settings.lake.startswith("file:"):
            paths = [Path(f.path.removeprefix("file:")) for f in lake.files]
            source = self._stage_local(paths, load_id)
            self._copy(incoming, source, files, lake.day, "purge=true")
            return
        if not self.settings.snowflake_lake_stage:
            raise WarehouseError(
                f"the lake is {self.settings.lake}: Snowflake reads it through an external stage "
                "on the lake's root; create one (with a storage integration) and set "
                "SHOPSTREAM_SNOWFLAKE_LAKE_STAGE to its name"
            )
        # an external stage on the lake root: `<stage>/orders/dt=D/<file>`, and a compacted
        # day's `<stage>/orders/_compacted/dt=D/<version>/<file>`: one COPY per directory
        # (FILES= takes 1,000 names)
        root = self.settings.lake.rstrip("/") + "/"
        folders: dict[str, dict[str, int]] = {}
        for f in lake.files:
            if not f.path.startswith(root):
                raise WarehouseError(f"{f.path} is not under the lake root {root}")
            folder = f.path[len(root) :].rsplit("/", 1)[0]
            folders.setdefault(folder, {})[_name(f)] = f.rows
        for folder, in_folder in sorted(folders.items()):
            names = sorted(in_folder)
            for i in range(0, len(names), 1000):
                listed = ", ".join(f"'{n}'" for n in names[i : i + 1000])
                chunk = {n: in_folder[n] for n in names[i : i + 1000]}
                source = f"@{self.settings.snowflake_lake_stage}/{folder}/"
                self._copy(incoming, source, chunk, lake.day, f"files=({listed})")

    def replace_dimensions(self, customers: pa.Table, products: pa.Table, at: datetime) -> None:
        with tempfile.TemporaryDirectory(prefix="shopstream-dims-") as tmp:
            for name, table in (("customers", customers), ("products", products)):
                path = Path(tmp) / f"{name}.parquet"
                pq.write_table(table, path)
                incoming = f"raw.incoming_{name}"
                self._exec(f"create or replace transient table {incoming} ({DIMENSIONS[name]})")
                source = self._stage_local([path], f"dimensions/{at:%Y%m%dT%H%M%S%f}/{name}")
                self._copy(incoming, source, {path.name: table.num_rows}, at.date(), "purge=true")
        self._exec("begin")
        try:
            for name in DIMENSIONS:
                self._exec(f"delete from raw.{name}")  # noqa: S608 (our table names)
                copy = f"insert into raw.{name} select *, ? from raw.incoming_{name}"  # noqa: S608
                self._exec(copy, (at,))
            self._exec("commit")
        except BaseException:
            self.con.rollback()
            raise
        for name in DIMENSIONS:
            self._exec(f"drop table if exists raw.incoming_{name}")

    def day_counts(self, day: date) -> DayCounts:
        rows, orders = self._exec(
            "select count(*), count(distinct order_id) from raw.orders where dt = ?", (day,)
        )[0]
        return DayCounts(int(rows), int(orders))

    def save_load(self, record: LoadRecord) -> None:
        row = record.row()
        marks = ", ".join("?" for _ in LOAD_COLUMNS)
        self._exec("begin")
        try:
            self._exec("delete from audit.loads where load_id = ?", (record.load_id,))
            self._exec(
                f"insert into audit.loads ({', '.join(LOAD_COLUMNS)}) values ({marks})",  # noqa: S608
                [row[c] for c in LOAD_COLUMNS],
            )
            self._exec("commit")
        except BaseException:
            self.con.rollback()
            raise

    def _records(self, where: str, params: tuple[Any, ...]) -> list[LoadRecord]:
        rows = self._exec(f"select {', '.join(LOAD_COLUMNS)} from audit.loads {where}", params)  # noqa: S608
        return [LoadRecord(**dict(zip(LOAD_COLUMNS, r, strict=True))) for r in rows]

    def latest_load(self, day: date) -> LoadRecord | None:
        found = self._records("where day = ? order by started_at desc limit 1", (day,))
        return found[0] if found else None

    def recent_loads(self, limit: int) -> list[LoadRecord]:
        return self._records("order by started_at desc limit ?", (limit,))

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._exec(sql, params)

    def frame(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        self.cur.execute(sql, params)
        names = [d.name.lower() for d in self.cur.description]
        return pd.DataFrame(self.cur.fetchall(), columns=names)

    def close(self) -> None:
        self.con.close()
