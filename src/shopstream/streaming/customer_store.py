"""What the dashboard needs about customers, kept by the streaming job as documents by `_id`.

- `rollup_customers`: who ordered in each minute, hour and business day, and overall, as a
  roaring bitmap of customer ids (`ids`) with its cardinality (`count`). Distinct customers
  over any window are the cardinality of the union of its buckets' bitmaps: exact, and a union
  is idempotent, so replays, resends and late orders need no bookkeeping. Written by the
  driver (`CustomerSetWriter`), from the sets the tasks return.
- `customer_orders`: `"42"` lists the UTC months in which customer 42 ordered (`months`), and
  `"42|2026-11"` holds that month's orders as a map `orders.<order id>` -> a summary (time,
  total, items, units). Inserting a missing document, `$set` and `$addToSet` of the same values
  are all idempotent, so a task writes them for every order it owns, replays included. A
  customer's page is one lookup for the head, one per month, and one per order shown.

A month document grows with the customer's orders that month (~150 bytes each): a customer
with more than ~100,000 orders in a month would reach MongoDB's 16 MB document limit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from bson.binary import Binary
from pymongo import ReplaceOne, UpdateOne
from pymongo.database import Database
from pyroaring import BitMap64

from shopstream.domain.documents import (
    CUSTOMER_ORDERS,
    CUSTOMER_SETS,
    TOTAL_KEY,
    customer_month_key,
    customer_orders_key,
)
from shopstream.streaming.mongo import find_each, insert_once
from shopstream.streaming.rollups import CustomerSets, customer_sets

__all__ = [
    "CustomerSetWriter",
    "bitmap",
    "history_entry",
    "rebuild",
    "set_document",
    "stored_differences",
    "write_history",
]


def bitmap(doc: Mapping[str, Any] | None) -> BitMap64:
    """The customer ids of a `rollup_customers` document (empty if there is none)."""
    if doc is None:
        return BitMap64()
    return BitMap64.deserialize(bytes(doc["ids"]))


def set_document(key: str, ids: BitMap64) -> dict[str, Any]:
    level, _, bucket = key.partition("|")
    ids.run_optimize()
    return {
        "_id": key,
        "level": level,
        "bucket": bucket if key != TOTAL_KEY else TOTAL_KEY,
        "count": len(ids),
        "ids": Binary(ids.serialize()),
    }


class CustomerSetWriter:
    """Adds each batch's customers to the `rollup_customers` bitmaps (the driver's share).

    Keeps the bitmaps it wrote (bounded by count): the current minute, hour, day and the
    all-time set are rewritten every batch and read only once. A bitmap that gains no new id
    is not written.
    """

    def __init__(self, db: Database[dict[str, Any]], cache_size: int = 256) -> None:
        self.coll = db[CUSTOMER_SETS]
        self.cache_size = cache_size
        self._cache: OrderedDict[str, BitMap64] = OrderedDict()

    def apply(self, sets: CustomerSets) -> int:
        """Unions `sets` into their documents; returns how many documents it wrote."""
        missing = [k for k in sets if k not in self._cache]
        loaded = dict(zip(missing, (bitmap(d) for d in find_each(self.coll, missing)), strict=True))
        writes: list[ReplaceOne[dict[str, Any]]] = []
        changed: dict[str, BitMap64] = {}
        for key, ids in sets.items():
            current = self._cache[key] if key in self._cache else loaded[key]
            merged = current | BitMap64(ids)
            if len(merged) != len(current):
                writes.append(ReplaceOne({"_id": key}, set_document(key, merged), upsert=True))
            changed[key] = merged
        if writes:
            self.coll.bulk_write(writes, ordered=False)
        for key, merged in changed.items():  # remembered only once written
            self._cache[key] = merged
            self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return len(writes)


def history_entry(order: Mapping[str, Any]) -> dict[str, Any]:
    """What a customer's history keeps of an order (the order itself is one lookup away)."""
    created = order["created_at"]  # stored to the millisecond: a replay writes the same
    return {
        "created_at": created.replace(microsecond=created.microsecond // 1000 * 1000),
        "total_cents": round(order["order_total"] * 100),
        "items": order["item_count"],
        "units": order["units"],
    }


@dataclass
class _Pending:
    """One batch's history writes, grouped: per (customer, month) the entries by order id."""

    months: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    owners: dict[str, tuple[int, str]] = field(default_factory=dict)

    def month_doc(self, key: str) -> dict[str, Any]:
        customer, month = self.owners[key]
        return {"_id": key, "customer_id": customer, "month": month, "orders": self.months[key]}

    def month_update(self, key: str) -> UpdateOne:
        fields = {f"orders.{oid}": entry for oid, entry in self.months[key].items()}
        customer, month = self.owners[key]
        return UpdateOne(
            {"_id": key},
            {"$set": fields, "$setOnInsert": {"customer_id": customer, "month": month}},
            upsert=True,
        )


def _pending(orders: Iterable[Mapping[str, Any]]) -> _Pending:
    out = _Pending()
    for order in orders:
        customer, month = order["customer"]["id"], order["created_at"].strftime("%Y-%m")
        key = customer_month_key(customer, month)
        out.months.setdefault(key, {})[order["_id"]] = history_entry(order)
        out.owners[key] = (customer, month)
    return out


def write_history(
    db: Database[dict[str, Any]],
    orders: Iterable[Mapping[str, Any]],
    known_months: OrderedDict[str, None],
    bulk_size: int,
    cache_size: int,
) -> int:
    """Records `orders` in their customers' histories; returns the documents written.

    A (customer, month) document this worker has not met is first inserted whole (with its
    head, one `insert_many` each: ~0.1 ms a document on FerretDB, where an update statement
    costs ~0.6 ms); only those that turn out to exist, and those already known, are updated.
    Months go first, so a head never names a missing month.
    """
    todo = _pending(orders)
    coll = db[CUSTOMER_ORDERS]
    unknown = [k for k in todo.months if k not in known_months]
    _, existing = insert_once(coll, [todo.month_doc(k) for k in unknown], bulk_size)
    taken = {d["_id"] for d in existing}
    updates = [todo.month_update(k) for k in todo.months if k in taken or k in known_months]
    _bulk(coll, updates, bulk_size)
    heads: dict[int, set[str]] = {}
    for key in unknown:
        customer, month = todo.owners[key]
        heads.setdefault(customer, set()).add(month)
    head_docs = [
        {"_id": customer_orders_key(c), "customer_id": c, "months": sorted(m)}
        for c, m in heads.items()
    ]
    _, existing = insert_once(coll, head_docs, bulk_size)
    _bulk(
        coll,
        [UpdateOne({"_id": d["_id"]}, {"$addToSet": {"months": {"$each": d["months"]}}})
         for d in existing],
        bulk_size,
    )  # fmt: skip
    for key in unknown:
        known_months[key] = None
        known_months.move_to_end(key)
    while len(known_months) > cache_size:
        known_months.popitem(last=False)
    return len(todo.months) + len(head_docs)


def _bulk(coll: Any, ops: list[UpdateOne], bulk_size: int) -> None:
    for start in range(0, len(ops), bulk_size):
        coll.bulk_write(ops[start : start + bulk_size], ordered=False)


def rebuild(db: Database[dict[str, Any]], orders: Sequence[Mapping[str, Any]], tz: tzinfo) -> int:
    """Recomputes both collections from `orders` (every order document); returns the
    documents written."""
    db[CUSTOMER_SETS].drop()
    db[CUSTOMER_ORDERS].drop()
    written = CustomerSetWriter(db, cache_size=0).apply(customer_sets(orders, tz))
    return written + write_history(db, orders, OrderedDict(), 1000, 0)


def stored_differences(
    db: Database[dict[str, Any]], orders: Sequence[Mapping[str, Any]], tz: tzinfo
) -> list[str]:
    """Where the stored sets and histories differ from a recomputation from `orders` (reads
    both collections whole: for checks, not serving)."""
    diffs: list[str] = []
    want_sets = customer_sets(orders, tz)
    have_sets = {d["_id"]: set(bitmap(d)) for d in db[CUSTOMER_SETS].find()}
    for key in sorted(want_sets.keys() | have_sets.keys()):
        have, want = have_sets.get(key, set()), want_sets.get(key, set())
        if have != want:
            diffs.append(f"customers {key}: stored {len(have)}, recomputed {len(want)}")
    want_months: dict[str, set[str]] = {}
    for order in orders:
        key = customer_month_key(order["customer"]["id"], order["created_at"].strftime("%Y-%m"))
        want_months.setdefault(key, set()).add(order["_id"])
    have_months = {
        d["_id"]: set(d.get("orders", {})) for d in db[CUSTOMER_ORDERS].find() if "month" in d
    }
    for key in sorted(want_months.keys() | have_months.keys()):
        had, wanted = have_months.get(key, set()), want_months.get(key, set())
        if had != wanted:
            diffs.append(f"customer_orders {key}: stored {len(had)}, recomputed {len(wanted)}")
    return diffs
