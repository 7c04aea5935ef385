"""The customer-history write options, measured on the stack's own stores (decision 39).

A micro-batch of N orders from returning customers (each customer already has a history)
is written by each option in turn, R times, into throwaway collections and schemas:

- `mongo_insert`: a bare `insert_many` of the N order documents, unordered, 1,000 a command:
  the store's own insert ceiling, which every option is compared with;
- `mongo_set`: layout 3's history: one `UpdateOne($set orders.<id>)` per (customer, month)
  document, unordered `bulk_write`s of 1,000 (what a returning customer's order cost);
- `mongo_append`: an append-only history document per (customer, batch), inserted: what the
  write would cost if the read side merged them (a head listing them would need an update
  again, so this is a lower bound of that option);
- `pg_unnest`: the PostgreSQL table (`store.customer_history`) written by one
  `INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING` per batch;
- `pg_copy`: the same table as the job writes it (`HistoryWriter`): a binary `COPY` into a
  temporary table, then `INSERT ... SELECT ... ON CONFLICT DO NOTHING`, in one transaction.

Each option's time per batch (median of R), orders/s, and its ratio to `mongo_insert`.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from pymongo import UpdateOne
from pymongo.database import Database

from shopstream.config import Settings
from shopstream.store.client import connect
from shopstream.store.customer_history import (
    HistoryWriter,
    drop_store,
    ensure_table,
    history_row,
)

__all__ = ["run"]


def _orders(n: int, customers: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    end = datetime(2026, 11, 28, tzinfo=UTC)
    out = []
    for _ in range(n):
        oid = str(uuid.uuid4())
        at = end - timedelta(seconds=rng.uniform(0, 3600))
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
        qty, cents = rng.randint(1, 4), rng.randint(99, 9999)
        items = [
            {"product_id": rng.randint(1, 1000), "name": "Product", "category": "Books",
             "unit_price": cents / 100, "quantity": qty, "line_total": cents * qty / 100}
        ]  # fmt: skip
        out.append({
            "_id": oid, "order_id": oid, "created_at": at, "day": at.strftime("%Y-%m-%d"),
            "customer": {"id": rng.randint(1, customers), "name": "Customer", "segment": "x"},
            "items": items, "item_count": 1, "units": qty, "order_total": cents * qty / 100,
            "ingest": {"query_id": "bench", "batch_id": 0, "kafka_timestamp": at},
        })  # fmt: skip
    return out


def _mongo_set(db: Database[dict[str, Any]], orders: list[dict[str, Any]]) -> None:
    ops = []
    for o in orders:
        key = f"{o['customer']['id']}|{o['created_at']:%Y-%m}"
        entry = {"created_at": o["created_at"], "total_cents": round(o["order_total"] * 100),
                 "items": o["item_count"], "units": o["units"]}  # fmt: skip
        ops.append(UpdateOne({"_id": key}, {"$set": {f"orders.{o['_id']}": entry}}, upsert=True))
    for start in range(0, len(ops), 1000):
        db["history_set"].bulk_write(ops[start : start + 1000], ordered=False)


def _mongo_append(db: Database[dict[str, Any]], orders: list[dict[str, Any]], batch: str) -> None:
    docs: dict[str, dict[str, Any]] = {}
    for o in orders:
        key = f"{o['customer']['id']}|{batch}"
        doc = docs.setdefault(key, {"_id": key, "orders": {}})
        doc["orders"][o["_id"]] = {"created_at": o["created_at"], "units": o["units"]}
    values = list(docs.values())
    for start in range(0, len(values), 1000):
        db["history_append"].insert_many(values[start : start + 1000], ordered=False)


_UNNEST = """
INSERT INTO {}.customer_orders
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[], %s::bigint[],
                     %s::integer[], %s::integer[])
ON CONFLICT (order_id) DO NOTHING
"""


def _pg_unnest(conn: psycopg.Connection[Any], store: str, orders: list[dict[str, Any]]) -> None:
    rows = [history_row(o) for o in orders]
    columns = zip(*((r.order_id, r.customer_id, r.created_at, r.total_cents, r.items, r.units)
                    for r in rows), strict=True)  # fmt: skip
    conn.execute(sql.SQL(_UNNEST).format(sql.Identifier(store)), [list(c) for c in columns])


def run(
    settings: Settings,
    batch: int,
    repeats: int,
    customers: int,
    report: Callable[[str], None],
) -> dict[str, Any]:
    store = f"bench_history_{uuid.uuid4().hex[:8]}"
    client = connect(settings.mongo_url)
    db = client[store]
    conn = psycopg.connect(settings.postgres_url, autocommit=True)
    writer = HistoryWriter(settings.postgres_url, store)
    ensure_table(conn, store)
    times: dict[str, list[float]] = {
        k: [] for k in ("mongo_insert", "mongo_set", "mongo_append", "pg_unnest", "pg_copy")
    }
    try:
        # Every customer has a history first (returning customers: the costly case).
        warm = _orders(customers, customers, seed=0)
        _mongo_set(db, warm)
        writer.write(warm)
        for r in range(repeats):
            for name in times:
                orders = _orders(batch, customers, seed=1000 * r + list(times).index(name) + 1)
                began = time.perf_counter()
                if name == "mongo_insert":
                    for start in range(0, batch, 1000):
                        db["orders"].insert_many(orders[start : start + 1000], ordered=False)
                elif name == "mongo_set":
                    _mongo_set(db, orders)
                elif name == "mongo_append":
                    _mongo_append(db, orders, f"b{r}")
                elif name == "pg_unnest":
                    _pg_unnest(conn, store, orders)
                else:
                    writer.write(orders)
                times[name].append(time.perf_counter() - began)
            report(f"round {r + 1}/{repeats}: " + ", ".join(
                f"{k} {v[-1]:.3f} s" for k, v in times.items()))  # fmt: skip
    finally:
        writer.close()
        client.drop_database(store)
        client.close()
        drop_store(conn, store)
        conn.close()
    ceiling = statistics.median(times["mongo_insert"])
    options = {}
    for name, samples in times.items():
        median = statistics.median(samples)
        options[name] = {
            "median_s": round(median, 4),
            "min_s": round(min(samples), 4),
            "orders_per_s": round(batch / median),
            "vs_insert": round(median / ceiling, 2),
        }
    return {
        "batch": batch,
        "repeats": repeats,
        "customers": customers,
        "options": options,
        "measured_at": datetime.now(UTC).isoformat(),
    }
