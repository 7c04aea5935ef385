"""Distinct customers, kept by the streaming job as documents by `_id`.

`rollup_customers`: who ordered in each minute, hour and business day, and overall, as a
roaring bitmap of customer ids (`ids`) with its cardinality (`count`). Distinct customers over
any window are the cardinality of the union of its buckets' bitmaps: exact, and a union is
idempotent, so replays, resends and late orders need no bookkeeping. Written by the driver
(`CustomerSetWriter`), from the sets the tasks return.

Customers' order histories are in PostgreSQL (`store.customer_history`, decision 39).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any

from bson.binary import Binary
from pymongo import ReplaceOne
from pymongo.database import Database
from pyroaring import BitMap64

from shopstream.domain.documents import CUSTOMER_SETS, OLD_CUSTOMER_ORDERS, TOTAL_KEY
from shopstream.domain.rollups import CustomerSets, customer_sets
from shopstream.store.mongo import find_each

__all__ = ["CustomerSetWriter", "bitmap", "rebuild", "set_document", "stored_differences"]


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


def rebuild(db: Database[dict[str, Any]], orders: Sequence[Mapping[str, Any]], tz: tzinfo) -> int:
    """Recomputes the sets from `orders` (every order document); returns the documents
    written. Drops the MongoDB histories of layout 3 (now in PostgreSQL)."""
    db[CUSTOMER_SETS].drop()
    db[OLD_CUSTOMER_ORDERS].drop()
    return CustomerSetWriter(db, cache_size=0).apply(customer_sets(orders, tz))


def stored_differences(
    db: Database[dict[str, Any]], orders: Sequence[Mapping[str, Any]], tz: tzinfo
) -> list[str]:
    """Where the stored sets differ from a recomputation from `orders` (reads the collection
    whole: for checks, not serving)."""
    diffs: list[str] = []
    want_sets = customer_sets(orders, tz)
    have_sets = {d["_id"]: set(bitmap(d)) for d in db[CUSTOMER_SETS].find()}
    for key in sorted(want_sets.keys() | have_sets.keys()):
        have, want = have_sets.get(key, set()), want_sets.get(key, set())
        if have != want:
            diffs.append(f"customers {key}: stored {len(have)}, recomputed {len(want)}")
    return diffs
