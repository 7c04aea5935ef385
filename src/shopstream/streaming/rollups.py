"""Serving rollups: small documents the dashboard and the spike job read instead of orders.

Collections (keys are strings, so FerretDB looks them up by index; see docs/streaming.md):

- `rollup_minute` `"2026-11-28T14:05Z"`: orders, units, sales per UTC minute.
- `rollup_minute_category` `"2026-11-28T14:05Z|Books"`: per minute and category; `orders`
  counts the orders with at least one line in the category.
- `rollup_day` `"2026-11-28"`: orders, units, sales and distinct `customers` per UTC day.
- `rollup_day_product` `"2026-11-28|42"`: per day and product: orders, units, sales so far.

Money is kept exact as integer `sales_cents`; `sales` (a double, cents / 100) is for display.

Exactness under replays. An order counts in exactly one micro-batch: the batch that first
wrote it (its `ingest.query_id` and `ingest.batch_id`; later records of the same `order_id` are
duplicates and change nothing). A batch's contribution to a bucket is therefore a fixed set of
orders, replays included. Every bucket remembers the last batch added to it (`last_batch`): a
replayed batch skips the buckets it already updated and adds to the ones it did not reach.
Writes are absolute (`ReplaceOne` of the whole bucket), never `$inc`, so a replay cannot
double-count. The job is the only writer (one enrich job per database), so it keeps the
buckets it has touched in memory and reads a bucket from MongoDB only the first time it meets
it.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.database import Database

__all__ = [
    "COLLECTIONS",
    "CUSTOMER_DAYS",
    "Delta",
    "Deltas",
    "RollupWriter",
    "add_customers",
    "batch_token",
    "customer_day_key",
    "differences",
    "ensure_indexes",
    "marker_document",
    "merge",
    "order_batch",
    "order_deltas",
    "rebuild",
    "recompute",
    "stored",
]

MINUTE = "rollup_minute"
MINUTE_CATEGORY = "rollup_minute_category"
DAY = "rollup_day"
DAY_PRODUCT = "rollup_day_product"
COLLECTIONS = (MINUTE, MINUTE_CATEGORY, DAY, DAY_PRODUCT)
CUSTOMER_DAYS = "rollup_customer_day"  # one marker per (day, customer): distinct customers
COUNTS = ("orders", "units", "sales_cents", "customers")


@dataclass
class Delta:
    """What some orders add to one bucket: fixed labels and counters."""

    labels: dict[str, Any]
    counts: Counter[str] = field(default_factory=Counter)


Deltas = dict[tuple[str, str], Delta]


def _cents(amount: float) -> int:
    return round(amount * 100)


def _add(deltas: Deltas, collection: str, key: str, labels: dict[str, Any], **counts: int) -> None:
    delta = deltas.get((collection, key))
    if delta is None:
        delta = deltas[(collection, key)] = Delta(labels)
    delta.counts.update(counts)


def customer_day_key(order: Mapping[str, Any]) -> str:
    return f"{order['day']}|{order['customer']['id']}"


def order_deltas(orders: Iterable[Mapping[str, Any]], deltas: Deltas | None = None) -> Deltas:
    """What `orders` (enriched order documents) add to the rollups, distinct customers aside."""
    deltas = {} if deltas is None else deltas
    for order in orders:
        created: datetime = order["created_at"]
        minute = created.replace(second=0, microsecond=0)
        minute_key = minute.strftime("%Y-%m-%dT%H:%MZ")
        day = order["day"]
        total = sum(_cents(i["line_total"]) for i in order["items"])
        units = sum(i["quantity"] for i in order["items"])
        _add(deltas, MINUTE, minute_key, {"minute": minute, "day": day}, orders=1, units=units,
             sales_cents=total)  # fmt: skip
        _add(deltas, DAY, day, {"day": day}, orders=1, units=units, sales_cents=total)
        by_category: dict[str, Counter[str]] = {}
        by_product: dict[int, Counter[str]] = {}
        names: dict[int, tuple[str, str]] = {}
        for item in order["items"]:
            line = Counter(units=item["quantity"], sales_cents=_cents(item["line_total"]))
            by_category.setdefault(item["category"], Counter()).update(line)
            by_product.setdefault(item["product_id"], Counter()).update(line)
            names[item["product_id"]] = (item["name"], item["category"])
        for category, counts in by_category.items():
            labels = {"minute": minute, "day": day, "category": category}
            _add(deltas, MINUTE_CATEGORY, f"{minute_key}|{category}", labels, orders=1, **counts)
        for product_id, counts in by_product.items():
            name, category = names[product_id]
            labels = {"day": day, "product_id": product_id, "name": name, "category": category}
            _add(deltas, DAY_PRODUCT, f"{day}|{product_id}", labels, orders=1, **counts)
    return deltas


def batch_token(query_id: str, batch_id: int) -> str:
    """Names a micro-batch across restarts: the query id lives in the checkpoint, so a job
    started on a fresh checkpoint is a new query whose batch numbers start again at 0."""
    return f"{query_id}:{batch_id}"


def order_batch(order: Mapping[str, Any]) -> str:
    """The batch that inserted an order document ("" for documents written before the job
    recorded it: they belong to no batch the job could be running)."""
    ingest = order.get("ingest") or {}
    if "query_id" not in ingest or "batch_id" not in ingest:
        return ""
    return batch_token(ingest["query_id"], ingest["batch_id"])


def marker_document(key: str, order: Mapping[str, Any], batch: str) -> dict[str, Any]:
    """The `rollup_customer_day` marker of a customer's first order of a day."""
    return {"day": order["day"], "customer_id": order["customer"]["id"], "first_batch": batch,
            "_id": key}  # fmt: skip


def add_customers(deltas: Deltas, customer_days: Iterable[str]) -> Deltas:
    """Counts each new `day|customer` pair as one distinct customer of that day."""
    for key in customer_days:
        day = key.split("|", 1)[0]
        _add(deltas, DAY, day, {"day": day}, customers=1)
    return deltas


def merge(parts: Iterable[Deltas]) -> Deltas:
    """Sums partial deltas (one per Spark partition) into one."""
    total: Deltas = {}
    for part in parts:
        for key, delta in part.items():
            mine = total.get(key)
            if mine is None:
                total[key] = Delta(dict(delta.labels), Counter(delta.counts))
            else:
                mine.labels.update(delta.labels)  # the newest product name wins
                mine.counts.update(delta.counts)
    return total


def recompute(orders: Iterable[Mapping[str, Any]]) -> Deltas:
    """The rollups from scratch, from every order document (for checks and rebuilds)."""
    orders = list(orders)
    deltas = order_deltas(orders)
    return add_customers(deltas, {customer_day_key(o) for o in orders})


def bucket_document(key: str, delta: Delta, batch: str) -> dict[str, Any]:
    counts = {name: int(delta.counts.get(name, 0)) for name in COUNTS}
    return {
        "_id": key,
        **delta.labels,
        **counts,
        "sales": counts["sales_cents"] / 100,
        "last_batch": batch,
    }


class RollupWriter:
    """Adds each micro-batch's deltas to the bucket documents, once per batch."""

    def __init__(self, db: Database[dict[str, Any]], cache_size: int = 200_000) -> None:
        self.db = db
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], dict[str, Any] | None] = OrderedDict()

    def apply(self, batch: str, deltas: Deltas) -> int:
        """Adds the deltas of `batch` (a `batch_token`) to their buckets, skipping the buckets
        this batch already reached before a crash; returns how many buckets changed."""
        current = self._lookup(list(deltas))
        writes: dict[str, list[ReplaceOne[dict[str, Any]]]] = {}
        updated: list[tuple[tuple[str, str], dict[str, Any]]] = []
        for (collection, key), delta in deltas.items():
            doc = current[(collection, key)]
            if doc is not None and doc["last_batch"] == batch:
                continue  # this batch reached the bucket before a crash: already counted
            counts = Counter({n: doc.get(n, 0) for n in COUNTS}) if doc else Counter()
            counts.update(delta.counts)
            new = bucket_document(key, Delta(delta.labels, counts), batch)
            writes.setdefault(collection, []).append(ReplaceOne({"_id": key}, new, upsert=True))
            updated.append(((collection, key), new))
        for collection, ops in writes.items():
            for start in range(0, len(ops), 500):
                self.db[collection].bulk_write(ops[start : start + 500], ordered=False)
        for cache_key, new in updated:  # cached only once written: a failed write re-reads
            self._remember(cache_key, new)
        return len(updated)

    def _lookup(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any] | None]:
        found = {k: self._cache[k] for k in keys if k in self._cache}
        missing = [k for k in keys if k not in found]

        def fetch(k: tuple[str, str]) -> dict[str, Any] | None:
            return self.db[k[0]].find_one({"_id": k[1]})

        if not missing:
            return found
        # Point lookups by `_id`: indexed on MongoDB and on FerretDB (where `$in` scans).
        with ThreadPoolExecutor(max_workers=8) as pool:
            for key, doc in zip(missing, pool.map(fetch, missing), strict=True):
                found[key] = doc
                self._remember(key, doc)
        return found

    def _remember(self, key: tuple[str, str], doc: dict[str, Any] | None) -> None:
        self._cache[key] = doc
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def stored(db: Database[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """Every bucket's counters as stored (reads whole collections: for checks, not serving)."""
    return {
        (collection, doc["_id"]): {n: int(doc.get(n, 0)) for n in COUNTS}
        for collection in COLLECTIONS
        for doc in db[collection].find({}, {n: 1 for n in COUNTS})
    }


def differences(db: Database[dict[str, Any]], orders: Iterable[Mapping[str, Any]]) -> list[str]:
    """Buckets whose stored counters differ from a recomputation from `orders`."""
    have = stored(db)
    want = {k: {n: int(d.counts.get(n, 0)) for n in COUNTS} for k, d in recompute(orders).items()}
    return [
        f"{collection} {key}: stored {have.get((collection, key))}, "
        f"recomputed {want.get((collection, key))}"
        for collection, key in sorted(have.keys() | want.keys())
        if have.get((collection, key)) != want.get((collection, key))
    ]


def rebuild(db: Database[dict[str, Any]]) -> int:
    """Recomputes every rollup from the `orders` collection.

    Stop the job first, cleanly: a batch replayed after a rebuild would count again the orders
    its crashed attempt wrote.
    """
    orders = list(db["orders"].find())
    deltas = recompute(orders)
    for collection in (*COLLECTIONS, CUSTOMER_DAYS):
        db[collection].drop()
    markers = {customer_day_key(o): o for o in orders}
    if markers:
        db[CUSTOMER_DAYS].insert_many(
            [marker_document(key, o, "rebuild") for key, o in markers.items()]
        )
    by_collection: dict[str, list[dict[str, Any]]] = {}
    for (collection, key), delta in deltas.items():
        by_collection.setdefault(collection, []).append(bucket_document(key, delta, "rebuild"))
    for collection, docs in by_collection.items():
        db[collection].insert_many(docs)
    ensure_indexes(db)
    return len(deltas)


def ensure_indexes(db: Database[dict[str, Any]]) -> None:
    """Indexes for the dashboard's and the spike job's reads (MongoDB uses them; FerretDB v1
    accepts and ignores them, which is fine for collections of this size)."""
    db[MINUTE].create_index([("minute", ASCENDING)])
    db[MINUTE_CATEGORY].create_index([("minute", ASCENDING), ("category", ASCENDING)])
    db[DAY_PRODUCT].create_index([("day", ASCENDING), ("units", DESCENDING)])
    db[DAY_PRODUCT].create_index([("product_id", ASCENDING), ("day", ASCENDING)])
    db["orders"].create_index([("customer.id", ASCENDING), ("created_at", DESCENDING)])
