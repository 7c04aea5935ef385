"""The batch ELT's benchmark: one lake day of N orders into the warehouse, step by step.

The day is written the way the landing query writes it (Parquet files of Kafka records under
`orders/dt=D/`, committed in `_spark_metadata`), with one file per micro-batch of the lake's
10 s trigger unless told otherwise, so the load meets the lake's real file count. Orders
reference the stack's own customers and products (the dimension snapshot reads PostgreSQL).
Each step is timed as the DAG runs it, into an empty warehouse and then again (the steady
state), and then once more after the day's compaction (issue 22: the same rows in a few
files); the same-run baseline is DuckDB alone scanning the same files (rows and distinct order
ids), the floor under any load of them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from shopstream.config import Settings
from shopstream.streaming.committed import lake_files
from shopstream.streaming.compaction import compact_day
from shopstream.warehouse import open_warehouse
from shopstream.warehouse.dbt import read_run_results
from shopstream.warehouse.load import load_raw, reconcile, snapshot_dimensions, transform
from shopstream.warehouse.serving import publish

__all__ = ["customer_ids", "run", "write_lake_day"]

Report = Callable[[str], None]
DAY = date(2026, 3, 2)


def customer_ids(postgres_url: str) -> tuple[np.ndarray, np.ndarray]:
    with psycopg.connect(postgres_url) as conn:
        customers = [r[0] for r in conn.execute("SELECT id FROM customers")]
        products = [r[0] for r in conn.execute("SELECT id FROM products")]
    if not customers or not products:
        raise RuntimeError("the stack has no customers or products: run `shopstream seed`")
    return np.array(customers), np.array(products)


def _values(rng: np.random.Generator, n: int, customers: np.ndarray, products: np.ndarray,
            start: int) -> tuple[list[bytes], list[str], np.ndarray]:  # fmt: skip
    seconds = np.sort(rng.integers(0, 86_400, n)) + start
    cust = rng.choice(customers, n)
    lines = rng.integers(1, 4, n)
    values, ids = [], []
    for i in range(n):
        oid = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i))
        at = datetime.fromtimestamp(int(seconds[i]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        items = ",".join(
            f'{{"product_id":{int(p)},"quantity":{int(q)}}}'
            for p, q in zip(
                rng.choice(products, lines[i]), rng.integers(1, 4, lines[i]), strict=True
            )
        )
        values.append(
            f'{{"schema_version":1,"order_id":"{oid}","customer_id":{int(cust[i])},'
            f'"created_at":"{at}","received_at":"{at}","items":[{items}]}}'.encode()
        )
        ids.append(oid)
    return values, ids, seconds


def write_lake_day(root: Path, orders: int, files: int, customers: np.ndarray,
                   products: np.ndarray, seed: int = 1, day: date = DAY,
                   batch: int = 0) -> int:  # fmt: skip
    """Writes `orders` orders of `day` as `files` lake files under `root`/orders, committed
    as file-sink batch `batch`."""
    rng = np.random.default_rng(seed)
    table_dir = root / "orders"
    day_dir = table_dir / f"dt={day}"
    day_dir.mkdir(parents=True, exist_ok=True)
    start = int(datetime.combine(day, datetime.min.time(), UTC).timestamp())
    values, ids, seconds = _values(rng, orders, customers, products, start)
    entries = []
    bounds = np.linspace(0, orders, files + 1).astype(int)
    for f in range(files):
        lo, hi = int(bounds[f]), int(bounds[f + 1])
        stamps = pa.array((seconds[lo:hi] * 1_000_000).astype("int64"), pa.timestamp("us"))
        table = pa.table({
            "key": pa.array([str(i).encode() for i in range(lo, hi)], pa.binary()),
            "value": pa.array(values[lo:hi], pa.binary()),
            "topic": pa.array(["orders"] * (hi - lo)),
            "partition": pa.array(np.arange(lo, hi) % 3, pa.int32()),
            "offset": pa.array(np.arange(lo, hi) // 3, pa.int64()),
            "kafka_timestamp": stamps,
            "order_id": pa.array(ids[lo:hi]),
            "created_at": stamps,
        })  # fmt: skip
        path = day_dir / f"part-{f:05d}-{uuid.uuid4()}.c000.snappy.parquet"
        pq.write_table(table, path, compression="snappy")
        # the path as Spark writes it (as_uri() would escape the "=")
        entries.append({"path": f"file:{path}", "size": path.stat().st_size, "isDir": False,
                        "modificationTime": 0, "blockReplication": 1, "blockSize": 0,
                        "action": "add"})  # fmt: skip
    log = table_dir / "_spark_metadata"
    log.mkdir(exist_ok=True)
    (log / str(batch)).write_text("v1\n" + "\n".join(json.dumps(e) for e in entries) + "\n")
    return orders


def _timed(report: Report, name: str, rows: int, action: Callable[[], Any]) -> dict[str, Any]:
    started = time.monotonic()
    action()
    seconds = time.monotonic() - started
    report(f"  {name:22} {seconds:7.2f} s  {rows / seconds:>12,.0f} rows/s")
    return {"step": name, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds)}


def _dbt_models(settings: Settings) -> list[dict[str, Any]]:
    nodes = read_run_results(settings)[1]
    return sorted(
        ({"node": n.unique_id.split(".", 2)[-1], "seconds": n.seconds} for n in nodes),
        key=lambda r: -r["seconds"],
    )


def _pipeline(settings: Settings, rows: int, dims: int, report: Report) -> list[dict[str, Any]]:
    """Every step of DAY's load, timed as the DAG runs them (`dims`: the snapshot's rows)."""
    steps = []
    with open_warehouse(settings) as wh:
        steps.append(_timed(report, "load raw.orders", rows, lambda: load_raw(settings, wh, DAY)))
        steps.append(
            _timed(report, "dimensions", dims, lambda: snapshot_dimensions(settings, wh, DAY))
        )
        steps.append(_timed(report, "reconcile", rows, lambda: reconcile(settings, wh, DAY)))
    steps.append(_timed(report, "dbt build", rows, lambda: transform(settings, [DAY])))
    steps.append(_timed(report, "publish", rows, lambda: publish(settings)))
    total = sum(s["seconds"] for s in steps)
    report(f"  {'load + dbt build':22} {total:7.2f} s  (target <= 20 s for 1,000,000 orders)")
    return steps


def run(settings: Settings, root: Path, orders: int, files: int, report: Report) -> dict[str, Any]:
    """Writes the day, then times the baseline and every step of its load, twice: into an
    empty warehouse, then again (the steady state: every day after the first finds the
    tables and runs the incremental path, deleting and re-inserting its day); the results."""
    customers, products = customer_ids(settings.postgres_url)
    started = time.monotonic()
    write_lake_day(root / "lake", orders, files, customers, products)
    report(f"wrote {orders:,} orders of {DAY} as {files:,} lake files "
           f"in {time.monotonic() - started:.1f} s")  # fmt: skip
    settings = settings.model_copy(update={
        "lake_uri": (root / "lake").as_uri(),
        "warehouse_duckdb_path": root / "wh" / "bench.duckdb",
        "data_dir": root / "data",
    })  # fmt: skip
    pattern = str(root / "lake" / "orders" / f"dt={DAY}" / "*.parquet")
    rows = orders  # one record per order
    baseline = _timed(
        report,
        "baseline: duckdb scan",
        rows,
        lambda: (
            duckdb.connect()
            .execute(f"select count(*), count(distinct order_id) from read_parquet('{pattern}')")
            .fetchall()
        ),
    )
    report("into an empty warehouse:")
    first = _pipeline(settings, rows, len(customers) + len(products), report)
    first_nodes = _dbt_models(settings)
    report("the same day again (the steady state: the incremental path):")
    steady = _pipeline(settings, rows, len(customers) + len(products), report)
    report(f"compaction of the day's {files:,} files (issue 22):")
    compaction = _timed(report, "compact", rows, lambda: compact_day(settings, DAY))
    compacted_files = len(lake_files(f"{settings.lake}/orders", DAY.isoformat(), settings))
    report(f"  -> {compacted_files} files; the day again, from the compacted files:")
    compacted = _pipeline(settings, rows, len(customers) + len(products), report)
    with open_warehouse(settings) as wh:
        facts = wh.query(f"select count(*) from marts.fct_orders where order_date = '{DAY}'")[0][0]
    if int(facts) != orders:
        raise RuntimeError(f"the benchmark's day has {facts:,} facts, not {orders:,}: not measured")
    first_s = round(sum(s["seconds"] for s in first), 2)
    steady_s = round(sum(s["seconds"] for s in steady), 2)
    return {
        "day": DAY.isoformat(), "orders": orders, "files": files, "warehouse": settings.warehouse,
        "customers": len(customers), "products": len(products), "fact_orders": int(facts),
        "baseline": baseline, "first_load": {"steps": first, "seconds": first_s,
                                             "dbt_nodes": first_nodes},
        "steady_state": {"steps": steady, "seconds": steady_s},
        "compaction": {**compaction, "files_after": compacted_files},
        "compacted": {"steps": compacted, "seconds": round(sum(s["seconds"] for s in compacted), 2),
                      "dbt_nodes": _dbt_models(settings)},
        "pipeline_seconds": steady_s,
        "target": {"seconds": 20,
                   "met": max(first_s, steady_s) <= 20 if orders >= 1_000_000 else None},
    }  # fmt: skip
