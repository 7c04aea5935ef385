"""Distinct customers, kept by the streaming job as documents by `_id`.

`rollup_customers`: who ordered in each minute, hour and business day, and overall, as a
roaring bitmap of customer ids (`ids`) with its cardinality (`count`). Late orders' minutes
(`rollups.LATE_MINUTE`: history) are kept per hour instead, in `late_minutes|<hour>`
documents with one bitmap per minute (`minutes`: `{"05": ids, ...}`), so that a batch of
history writes a document per hour; a minute's customers are the union of its `minute|`
bitmap and its entry there. Distinct customers over
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
from pymongo.collection import Collection
from pymongo.database import Database
from pyroaring import BitMap64

from shopstream.domain.documents import CUSTOMER_SETS, OLD_CUSTOMER_ORDERS, TOTAL_KEY
from shopstream.domain.rollups import LATE_MINUTE, CustomerSets, customer_sets
from shopstream.store.mongo import find_each

__all__ = [
    "CustomerSetWriter",
    "bitmap",
    "late_minute_bitmap",
    "late_minutes_key",
    "rebuild",
    "set_document",
    "stored_differences",
]

_LATE = f"{LATE_MINUTE}|"
_LATE_DOC = "late_minutes|"


def late_minutes_key(minute_id: str) -> tuple[str, str]:
    """(the `late_minutes|<hour>` document, the minute's field in it) of a UTC minute
    `2026-11-28T14:05Z`."""
    hour, minute = minute_id.rsplit(":", 1)  # by the colon: a year may have 1-4 digits
    return f"{_LATE_DOC}{hour}Z", minute[:2]


def late_minute_bitmap(doc: Mapping[str, Any] | None, minute_id: str) -> BitMap64:
    """The late orders' customers of a minute, from its hour's `late_minutes|` document."""
    ids = (doc or {}).get("minutes", {}).get(late_minutes_key(minute_id)[1])
    return BitMap64() if ids is None else BitMap64.deserialize(bytes(ids))


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
        self._late: OrderedDict[str, dict[str, BitMap64]] = OrderedDict()

    def apply(self, sets: CustomerSets) -> int:
        """Unions `sets` into their documents; returns how many documents it wrote."""
        late = {k: v for k, v in sets.items() if k.startswith(_LATE)}
        written = 0
        if late:
            written = self._apply_late(late)
            sets = {k: v for k, v in sets.items() if k not in late}
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
        _write_then_remember(self.coll, writes, self._cache, changed)
        self._trim()
        return written + len(writes)

    def _apply_late(self, sets: CustomerSets) -> int:
        """`late_minute|` sets into their hours' documents (read once each, cached as the
        minute bitmaps they hold)."""
        by_doc: dict[str, dict[str, set[int]]] = {}
        for key, ids in sets.items():
            doc_id, minute = late_minutes_key(key[len(_LATE) :])
            by_doc.setdefault(doc_id, {})[minute] = ids
        missing = [k for k in by_doc if k not in self._late]
        for key, doc in zip(missing, find_each(self.coll, missing), strict=True):
            minutes = (doc or {}).get("minutes", {})
            self._late[key] = {m: BitMap64.deserialize(bytes(b)) for m, b in minutes.items()}
        writes: list[ReplaceOne[dict[str, Any]]] = []
        changed: dict[str, dict[str, BitMap64]] = {}
        for doc_id, minutes in by_doc.items():
            current = self._late[doc_id]
            merged = dict(current)
            for minute, ids in minutes.items():
                merged[minute] = current.get(minute, BitMap64()) | BitMap64(ids)
            if any(len(merged[m]) != len(current.get(m, ())) for m in minutes):
                doc = _late_document(doc_id, merged)
                writes.append(ReplaceOne({"_id": doc_id}, doc, upsert=True))
            changed[doc_id] = merged
        _write_then_remember(self.coll, writes, self._late, changed)
        return len(writes)

    def _trim(self) -> None:
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        while len(self._late) > self.cache_size:
            self._late.popitem(last=False)


def _write_then_remember(
    coll: Collection[dict[str, Any]],
    writes: list[ReplaceOne[dict[str, Any]]],
    cache: OrderedDict[str, Any],
    changed: Mapping[str, Any],
) -> None:
    """Writes the replaced documents, then caches their new state: only once written, so a
    failed write is read again next time."""
    if writes:
        coll.bulk_write(writes, ordered=False)
    for key, value in changed.items():
        cache[key] = value
        cache.move_to_end(key)


def _late_document(doc_id: str, minutes: Mapping[str, BitMap64]) -> dict[str, Any]:
    out = {}
    for minute in sorted(minutes):
        ids = minutes[minute]
        ids.run_optimize()
        out[minute] = Binary(ids.serialize())
    return {"_id": doc_id, "level": "late_minutes", "bucket": doc_id[len(_LATE_DOC) :],
            "minutes": out}  # fmt: skip


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
    have_sets: dict[str, set[int]] = {}
    for doc in db[CUSTOMER_SETS].find():
        if doc["_id"].startswith(_LATE_DOC):
            hour = doc["_id"][len(_LATE_DOC) : -1]  # 2026-11-28T14
            for minute, ids in doc.get("minutes", {}).items():
                have_sets[f"{_LATE}{hour}:{minute}Z"] = set(BitMap64.deserialize(bytes(ids)))
        else:
            have_sets[doc["_id"]] = set(bitmap(doc))
    for key in sorted(want_sets.keys() | have_sets.keys()):
        have, want = have_sets.get(key, set()), want_sets.get(key, set())
        if have != want:
            diffs.append(f"customers {key}: stored {len(have)}, recomputed {len(want)}")
    return diffs
