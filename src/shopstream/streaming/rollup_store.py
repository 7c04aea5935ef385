"""Where the rollup buckets live in MongoDB, and how a batch adds to them exactly once.

Documents (string `_id`s, read by point lookups; layout in docs/streaming.md):

- `rollup_minute` `"2026-11-28T14:05Z"`: the minute's orders, units, sales, and `categories`,
  one entry per category sold in it (so a trend line of N minutes is N lookups);
- `rollup_day` `"2026-11-28"`: the day's orders, units, sales and distinct customers;
- `rollup_day_product` `"2026-11-28|07"`: one of `PRODUCT_SHARDS` documents per day, with a
  `products` entry for each product of that shard sold that day.

Grouping buckets into documents bounds what one micro-batch rewrites: a few minute documents,
one day and at most `PRODUCT_SHARDS` product documents per day, however many orders and
products it carries (FerretDB v1 runs each update statement on its own, ~0.7 ms each).

Exactness under replays: an order counts in exactly one micro-batch, the one that inserted it
(`streaming.sink`), so a batch's contribution is a fixed set of orders, replays included. Every
document remembers the last batch added to it (`last_batch`) and is written whole
(`ReplaceOne`, absolute values, never `$inc`): a replayed batch skips the documents it already
wrote and adds to the others. The job is the only writer (one enrich job per database), so it
keeps the documents it wrote in memory and reads one only the first time it meets it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.database import Database

from shopstream.domain.documents import (
    CUSTOMER_DAYS,
    ORDERS,
    ROLLUP_DAY,
    ROLLUP_DAY_PRODUCT,
    ROLLUP_MINUTE,
    day_products_key,
)
from shopstream.streaming.mongo import find_each, insert_once
from shopstream.streaming.rollups import (
    COUNTS,
    DAY,
    DAY_PRODUCT,
    MINUTE,
    MINUTE_CATEGORY,
    Delta,
    Deltas,
    customer_day,
    marker_document,
    recompute,
    split_key,
)

__all__ = [
    "COLLECTIONS",
    "RollupWriter",
    "differences",
    "documents_for",
    "ensure_indexes",
    "rebuild",
    "refuse_old_layout",
    "stored",
]

COLLECTIONS = (ROLLUP_MINUTE, ROLLUP_DAY, ROLLUP_DAY_PRODUCT)
Home = tuple[str, str]  # (collection, document _id)
# Grouped kinds: the array of entries in the home document, and the field naming an entry.
_ENTRIES = {MINUTE_CATEGORY: ("categories", "category"), DAY_PRODUCT: ("products", "product_id")}
_ENTRY_COUNTS = ("orders", "units", "sales_cents")
_OLD_LAYOUT = "rollup_minute_category"  # a collection of the layout before this one


def _home(kind: str, key: str, labels: Mapping[str, Any]) -> Home:
    if kind in (MINUTE, MINUTE_CATEGORY):
        return ROLLUP_MINUTE, split_key(key)[0] if kind == MINUTE_CATEGORY else key
    if kind == DAY:
        return ROLLUP_DAY, key
    return ROLLUP_DAY_PRODUCT, day_products_key(labels["day"], labels["product_id"])


def _counters(current: Mapping[str, Any], delta: Delta, names: Iterable[str]) -> dict[str, Any]:
    """`current`'s counters plus the delta's, with `sales` (a double) for display."""
    values = {n: int(current.get(n, 0)) + int(delta.counts.get(n, 0)) for n in names}
    return {**values, "sales": values["sales_cents"] / 100}


def _new_document(home: Home, parts: list[tuple[str, Delta]]) -> dict[str, Any]:
    collection, doc_id = home
    doc: dict[str, Any] = {"_id": doc_id}
    if collection == ROLLUP_DAY_PRODUCT:
        day, shard = doc_id.split("|")
        doc["day"], doc["shard"] = day, int(shard)
    for kind, delta in parts:
        if kind in (MINUTE, DAY):
            doc.update(delta.labels)
    return doc


def documents_for(deltas: Deltas) -> dict[Home, list[tuple[str, Delta]]]:
    """The deltas grouped by the document that holds their bucket."""
    homes: dict[Home, list[tuple[str, Delta]]] = {}
    for (kind, key), delta in deltas.items():
        homes.setdefault(_home(kind, key, delta.labels), []).append((kind, delta))
    return homes


def _apply(doc: dict[str, Any], parts: list[tuple[str, Delta]], batch: str) -> dict[str, Any]:
    """Adds a batch's deltas to a document (in place) and stamps it with the batch."""
    for field, id_field in _ENTRIES.values():
        entries = {e[id_field]: e for e in doc.get(field, [])}
        for kind, delta in parts:
            if _ENTRIES.get(kind, ("",))[0] != field:
                continue
            entry = entries.setdefault(delta.labels[id_field], {})
            labels = {k: v for k, v in delta.labels.items() if k not in ("minute", "day")}
            entry.update({**labels, **_counters(entry, delta, _ENTRY_COUNTS)})
        if entries:
            doc[field] = [entries[k] for k in sorted(entries)]
    for kind, delta in parts:
        if kind not in _ENTRIES:
            doc.update(_counters(doc, delta, COUNTS if kind == DAY else _ENTRY_COUNTS))
    doc["last_batch"] = batch
    return doc


class RollupWriter:
    """Adds each micro-batch's deltas to the rollup documents, once per batch."""

    def __init__(
        self, db: Database[dict[str, Any]], cache_size: int = 200_000, bulk_size: int = 1000
    ) -> None:
        self.db = db
        self.cache_size = cache_size
        self.bulk_size = bulk_size
        self._cache: OrderedDict[Home, dict[str, Any]] = OrderedDict()

    def apply(self, batch: str, deltas: Deltas) -> int:
        """Adds the deltas of `batch` (a `batch_token`) to their documents, skipping those this
        batch already wrote before a crash; returns how many documents it wrote.

        A document the writer has not seen yet is first tried as a new one (one `insert_many`
        for all of them: a backfill creates thousands); only those that turn out to exist are
        read and replaced.
        """
        homes = documents_for(deltas)
        created = self._create(batch, {h: p for h, p in homes.items() if h not in self._cache})
        current = self._lookup([h for h in homes if h not in created])
        writes: dict[str, list[ReplaceOne[dict[str, Any]]]] = {}
        updated: list[tuple[Home, dict[str, Any]]] = []
        for home, doc in current.items():
            if doc is not None and doc.get("last_batch") == batch:
                continue  # this batch wrote it before a crash: already counted
            base = _copy(doc) if doc is not None else _new_document(home, homes[home])
            new = _apply(base, homes[home], batch)
            writes.setdefault(home[0], []).append(ReplaceOne({"_id": home[1]}, new, upsert=True))
            updated.append((home, new))
        for collection, ops in writes.items():
            for start in range(0, len(ops), self.bulk_size):
                self.db[collection].bulk_write(ops[start : start + self.bulk_size], ordered=False)
        for home, new in updated:  # cached only once written: a failed write re-reads
            self._remember(home, new)
        return len(created) + len(updated)

    def _create(self, batch: str, homes: dict[Home, list[tuple[str, Delta]]]) -> set[Home]:
        """Inserts the documents among `homes` that do not exist yet; returns those."""
        by_collection: dict[str, list[dict[str, Any]]] = {}
        for home, parts in homes.items():
            doc = _apply(_new_document(home, parts), parts, batch)
            by_collection.setdefault(home[0], []).append(doc)
        created: set[Home] = set()
        for collection, docs in by_collection.items():
            inserted, _ = insert_once(self.db[collection], docs, self.bulk_size)
            for doc in inserted:
                created.add((collection, doc["_id"]))
                self._remember((collection, doc["_id"]), doc)
        return created

    def _lookup(self, homes: list[Home]) -> dict[Home, dict[str, Any] | None]:
        found: dict[Home, dict[str, Any] | None] = {
            h: self._cache[h] for h in homes if h in self._cache
        }
        by_collection: dict[str, list[str]] = {}
        for collection, doc_id in homes:
            if (collection, doc_id) not in found:
                by_collection.setdefault(collection, []).append(doc_id)
        for collection, ids in by_collection.items():
            docs = find_each(self.db[collection], ids)
            found.update(((collection, i), doc) for i, doc in zip(ids, docs, strict=True))
        return found

    def _remember(self, home: Home, doc: dict[str, Any]) -> None:
        self._cache[home] = doc
        self._cache.move_to_end(home)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy to change (the cached document stays as stored until the write succeeds)."""
    out = dict(doc)
    for field, _ in _ENTRIES.values():
        if field in out:
            out[field] = [dict(e) for e in out[field]]
    return out


def stored(db: Database[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """Every bucket's counters as stored (reads whole collections: for checks, not serving)."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for doc in db[ROLLUP_MINUTE].find():
        out[(MINUTE, doc["_id"])] = _counts(doc)
        for entry in doc.get("categories", []):
            out[(MINUTE_CATEGORY, f"{doc['_id']}|{entry['category']}")] = _counts(entry)
    for doc in db[ROLLUP_DAY].find():
        out[(DAY, doc["_id"])] = _counts(doc)
    for doc in db[ROLLUP_DAY_PRODUCT].find():
        for entry in doc.get("products", []):
            out[(DAY_PRODUCT, f"{doc['day']}|{entry['product_id']}")] = _counts(entry)
    return out


def _counts(doc: Mapping[str, Any]) -> dict[str, int]:
    return {n: int(doc.get(n, 0)) for n in COUNTS}


def differences(db: Database[dict[str, Any]], orders: Iterable[Mapping[str, Any]]) -> list[str]:
    """Buckets whose stored counters differ from a recomputation from `orders`."""
    have = stored(db)
    want = {k: _counts(d.counts) for k, d in recompute(orders).items()}
    return [
        f"{kind} {key}: stored {have.get((kind, key))}, recomputed {want.get((kind, key))}"
        for kind, key in sorted(have.keys() | want.keys())
        if have.get((kind, key)) != want.get((kind, key))
    ]


def rebuild(db: Database[dict[str, Any]]) -> int:
    """Recomputes every rollup from the `orders` collection; returns the documents written.

    Stop the job first, cleanly: a batch replayed after a rebuild would count again the orders
    its crashed attempt wrote.
    """
    orders = list(db[ORDERS].find())
    for collection in (*COLLECTIONS, CUSTOMER_DAYS, _OLD_LAYOUT):
        db[collection].drop()
    markers = {customer_day(o): o for o in orders}
    if markers:
        db[CUSTOMER_DAYS].insert_many(
            [marker_document(key, f"rebuild|{o['_id']}") for key, o in markers.items()]
        )
    written = RollupWriter(db, cache_size=0).apply("rebuild", recompute(orders))
    ensure_indexes(db)
    return written


def refuse_old_layout(db: Database[dict[str, Any]]) -> None:
    """Stops a job that would write into rollups of the earlier layout (one document per
    minute-category and per day-product): they must be rebuilt first."""
    if _OLD_LAYOUT in db.list_collection_names():
        raise RuntimeError(
            f"the rollups in {db.name} are in the layout of an earlier version; stop the job "
            "cleanly and run `shopstream rollups rebuild` once (it recomputes them from orders)"
        )


def ensure_indexes(db: Database[dict[str, Any]]) -> None:
    """Indexes for readers that range over time (MongoDB uses them; FerretDB v1 accepts and
    ignores them: there, readers use point lookups on the keys)."""
    db[ROLLUP_MINUTE].create_index([("minute", ASCENDING)])
    db[ROLLUP_DAY_PRODUCT].create_index([("day", ASCENDING)])
    db[ORDERS].create_index([("customer.id", ASCENDING), ("created_at", DESCENDING)])
