"""Where the rollup buckets live in MongoDB, and how a batch adds to them exactly once.

Documents (string `_id`s, read by point lookups; layout in docs/streaming.md):

- `rollup_minute` `"2026-11-28T14:05Z"`: the minute's orders, units, sales, and `categories`,
  one entry per category sold in it (so a trend line of N minutes is N lookups);
- `rollup_hour` `"2026-11-28T14Z"`: the same per UTC hour, and `minutes`, one entry per minute
  of the hour's late orders (`rollups.LATE_MINUTE`: history, imported or backfilled), so that
  a batch of history rewrites a document per hour, not per minute;
- `rollup_day` `"2026-11-28"`: the business day's orders, units, sales, distinct customers and
  `categories`;
- `rollup_day_product` `"2026-11-28|07"`: one of `PRODUCT_SHARDS` documents per business day,
  with a `products` entry for each product of that shard sold that day;
- `rollup_total` `"all"`: all-time orders, units, sales, and `dead_letters` by reason; and
  `"layout"`: the layout version and the business timezone the days were cut in.

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

import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.database import Database

from shopstream.domain.documents import (
    CUSTOMER_DAYS,
    DEAD_LETTERS,
    ORDERS,
    ROLLUP_DAY,
    ROLLUP_DAY_PRODUCT,
    ROLLUP_HOUR,
    ROLLUP_MINUTE,
    ROLLUP_TOTAL,
    TOTAL_KEY,
    day_products_key,
    minute_hour_key,
)
from shopstream.domain.rollups import (
    COUNTS,
    DAY,
    DAY_CATEGORY,
    DAY_PRODUCT,
    DEAD_LETTER,
    HOUR,
    HOUR_CATEGORY,
    LATE_MINUTE,
    MINUTE,
    MINUTE_CATEGORY,
    TOTAL,
    Delta,
    Deltas,
    customer_day,
    marker_document,
    recompute,
    split_key,
)
from shopstream.store import customer_history, customer_sets
from shopstream.store.mongo import find_each, insert_once, replace_all

__all__ = [
    "COLLECTIONS",
    "LAYOUT",
    "RollupWriter",
    "check",
    "check_layout",
    "differences",
    "documents_for",
    "drop_unused_indexes",
    "rebuild",
    "rebuild_all",
    "stored",
]

log = logging.getLogger(__name__)

COLLECTIONS = (ROLLUP_MINUTE, ROLLUP_HOUR, ROLLUP_DAY, ROLLUP_DAY_PRODUCT, ROLLUP_TOTAL)
# Layout 6 (issue 22) keeps late orders' minutes inside their hour's document; 5 (issue 19)
# moved customers' histories to the schema `<store>_history` (`customer_history.history_schema`);
# 4 (issue 18) moved them to PostgreSQL, schema `<store>`; 3 kept them in MongoDB; issue 7's
# layout was 2 (no hours, totals or layout document), 1.
LAYOUT = 6
Home = tuple[str, str]  # (collection, document _id)
_ENTRY_COUNTS = ("orders", "units", "sales_cents")
# Grouped kinds: the array of entries in the home document, the field naming an entry, and
# the entry's counters.
_ENTRIES = {
    MINUTE_CATEGORY: ("categories", "category", _ENTRY_COUNTS),
    HOUR_CATEGORY: ("categories", "category", _ENTRY_COUNTS),
    DAY_CATEGORY: ("categories", "category", _ENTRY_COUNTS),
    DAY_PRODUCT: ("products", "product_id", _ENTRY_COUNTS),
    DEAD_LETTER: ("dead_letters", "reason", ("dead_letters",)),
    LATE_MINUTE: ("minutes", "minute_key", _ENTRY_COUNTS),
}
_FIELDS = {field: (id_field, names) for field, id_field, names in _ENTRIES.values()}
_TIME_LABELS = ("minute", "hour", "day")
_LAYOUT_ID = "layout"


def _home(kind: str, key: str, labels: Mapping[str, Any]) -> Home:
    if kind in (MINUTE, HOUR):
        return (ROLLUP_MINUTE if kind == MINUTE else ROLLUP_HOUR), key
    if kind == LATE_MINUTE:  # "2026-11-28T14:05Z" lives in "2026-11-28T14Z"
        return ROLLUP_HOUR, minute_hour_key(key)
    if kind in (MINUTE_CATEGORY, HOUR_CATEGORY):
        return (ROLLUP_MINUTE if kind == MINUTE_CATEGORY else ROLLUP_HOUR), split_key(key)[0]
    if kind in (DAY, DAY_CATEGORY):
        return ROLLUP_DAY, key if kind == DAY else split_key(key)[0]
    if kind in (TOTAL, DEAD_LETTER):
        return ROLLUP_TOTAL, TOTAL_KEY
    return ROLLUP_DAY_PRODUCT, day_products_key(labels["day"], labels["product_id"])


def _counters(current: Mapping[str, Any], delta: Delta, names: Iterable[str]) -> dict[str, Any]:
    """`current`'s counters plus the delta's, with `sales` (a double) for display."""
    values = {n: int(current.get(n, 0)) + int(delta.counts.get(n, 0)) for n in names}
    if "sales_cents" in values:
        return {**values, "sales": values["sales_cents"] / 100}
    return values


def _new_document(home: Home, parts: list[tuple[str, Delta]]) -> dict[str, Any]:
    collection, doc_id = home
    doc: dict[str, Any] = {"_id": doc_id}
    if collection == ROLLUP_DAY_PRODUCT:
        day, shard = doc_id.split("|")
        doc["day"], doc["shard"] = day, int(shard)
    for kind, delta in parts:
        if kind in (MINUTE, HOUR, DAY):
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
    for field, (id_field, names) in _FIELDS.items():
        entries = {e[id_field]: e for e in doc.get(field, [])}
        for kind, delta in parts:
            if _ENTRIES.get(kind, ("",))[0] != field:
                continue
            entry = entries.setdefault(delta.labels[id_field], {})
            labels = {k: v for k, v in delta.labels.items() if k not in _TIME_LABELS}
            entry.update({**labels, **_counters(entry, delta, names)})
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
        self,
        db: Database[dict[str, Any]],
        cache_size: int = 200_000,
        bulk_size: int = 1000,
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self.db = db
        self.cache_size = cache_size
        self.bulk_size = bulk_size
        self.pool = pool  # writes a batch's documents as a few concurrent commands
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
        replace_all(self.db, writes, self.bulk_size, self.pool)
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
    for field in _FIELDS:
        if field in out:
            out[field] = [dict(e) for e in out[field]]
    return out


def stored(db: Database[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """Every bucket's counters as stored (reads whole collections: for checks, not serving)."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for collection, kind, entry_kind in (
        (ROLLUP_MINUTE, MINUTE, MINUTE_CATEGORY),
        (ROLLUP_HOUR, HOUR, HOUR_CATEGORY),
    ):
        for doc in db[collection].find():
            out[(kind, doc["_id"])] = _counts(doc)
            for entry in doc.get("categories", []):
                out[(entry_kind, f"{doc['_id']}|{entry['category']}")] = _counts(entry)
            for entry in doc.get("minutes", []):
                out[(LATE_MINUTE, entry["minute_key"])] = _counts(entry)
    for doc in db[ROLLUP_DAY].find():
        out[(DAY, doc["_id"])] = _counts(doc)
        for entry in doc.get("categories", []):
            out[(DAY_CATEGORY, f"{doc['_id']}|{entry['category']}")] = _counts(entry)
    for doc in db[ROLLUP_DAY_PRODUCT].find():
        for entry in doc.get("products", []):
            out[(DAY_PRODUCT, f"{doc['day']}|{entry['product_id']}")] = _counts(entry)
    total = db[ROLLUP_TOTAL].find_one({"_id": TOTAL_KEY})
    if total is not None:
        out[(TOTAL, TOTAL_KEY)] = _counts(total)
        for entry in total.get("dead_letters", []):
            out[(DEAD_LETTER, entry["reason"])] = {"dead_letters": int(entry["dead_letters"])}
    return out


def _counts(doc: Mapping[str, Any]) -> dict[str, int]:
    return {n: int(doc.get(n, 0)) for n in COUNTS}


def _recomputed(kind: str, delta: Delta) -> dict[str, int]:
    if kind == DEAD_LETTER:
        return {"dead_letters": int(delta.counts["dead_letters"])}
    return _counts(delta.counts)


def differences(
    db: Database[dict[str, Any]],
    orders: Iterable[Mapping[str, Any]],
    tz: tzinfo,
    dead: Iterable[Mapping[str, Any]] = (),
) -> list[str]:
    """Buckets whose stored counters differ from a recomputation from `orders` and `dead`."""
    have = stored(db)
    want = {k: _recomputed(k[0], d) for k, d in recompute(orders, tz, dead).items()}
    return [
        f"{kind} {key}: stored {have.get((kind, key))}, recomputed {want.get((kind, key))}"
        for kind, key in sorted(have.keys() | want.keys())
        if have.get((kind, key)) != want.get((kind, key))
    ]


def rebuild(
    db: Database[dict[str, Any]],
    tz: ZoneInfo,
    orders: list[dict[str, Any]] | None = None,
) -> int:
    """Recomputes every rollup from the `orders` (read whole unless given) and `dead_letters`
    collections; returns the documents written. `tz` is the business timezone days are cut
    in.

    Stop the job first, cleanly: a batch replayed after a rebuild would count again the orders
    its crashed attempt wrote.
    """
    orders = list(db[ORDERS].find()) if orders is None else orders
    dead = list(db[DEAD_LETTERS].find({}, {"reason": 1}))
    for collection in (*COLLECTIONS, CUSTOMER_DAYS, *_OLD_COLLECTIONS):
        db[collection].drop()
    markers = {customer_day(o, tz): o for o in orders}
    if markers:
        db[CUSTOMER_DAYS].insert_many(
            [marker_document(key, f"rebuild|{o['_id']}") for key, o in markers.items()]
        )
    written = RollupWriter(db, cache_size=0).apply("rebuild", recompute(orders, tz, dead))
    _write_layout(db, tz.key)
    drop_unused_indexes(db)
    return written


_OLD_COLLECTIONS = ("rollup_minute_category",)  # of layout 1


def rebuild_all(db: Database[dict[str, Any]], zone: ZoneInfo, postgres_url: str) -> int:
    """`rebuild`, the customer sets (`store.customer_sets`) and the customers' histories
    (`store.customer_history`, in the PostgreSQL schema named after `db`); returns the
    documents and rows written. Removes layout 4's history schema (a warning says what to
    check when a migration put other tables in it)."""
    orders = list(db[ORDERS].find())
    written = rebuild(db, zone, orders) + customer_sets.rebuild(db, orders, zone)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        written += customer_history.rebuild_history(conn, db.name, orders)
        if db.name != "public" and (left := customer_history.drop_old_schema(conn, db.name)):
            log.warning("%s", left)
    return written


def check(db: Database[dict[str, Any]], zone: ZoneInfo, postgres_url: str) -> list[str]:
    """Everything that differs from a recomputation from the orders and dead letters."""
    tz = zone
    orders = list(db[ORDERS].find())
    dead = list(db[DEAD_LETTERS].find({}, {"reason": 1}))
    diffs = differences(db, orders, tz, dead) + customer_sets.stored_differences(db, orders, tz)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        return diffs + customer_history.stored_history_differences(conn, db.name, orders)


def _write_layout(db: Database[dict[str, Any]], timezone: str) -> None:
    db[ROLLUP_TOTAL].replace_one(
        {"_id": _LAYOUT_ID}, {"_id": _LAYOUT_ID, "layout": LAYOUT, "timezone": timezone},
        upsert=True,
    )  # fmt: skip


def check_layout(db: Database[dict[str, Any]], timezone: str) -> None:
    """Stops a job that would write into rollups of another layout or cut in another business
    timezone (they must be rebuilt first); records the layout in a database without rollups."""
    layout = db[ROLLUP_TOTAL].find_one({"_id": _LAYOUT_ID})
    fix = "stop the job cleanly and run `shopstream rollups rebuild` once (it recomputes them)"
    if layout is None:
        names = set(db.list_collection_names())
        if names & {ROLLUP_MINUTE, ROLLUP_DAY, *_OLD_COLLECTIONS}:
            raise RuntimeError(f"the rollups in {db.name} are of an earlier version; {fix}")
        _write_layout(db, timezone)
        return
    if layout.get("layout") != LAYOUT:
        raise RuntimeError(
            f"the rollups in {db.name} have layout {layout.get('layout')}, this version "
            f"writes {LAYOUT}; {fix}"
        )
    if layout.get("timezone") != timezone:
        raise RuntimeError(
            f"the rollups in {db.name} cut days in {layout.get('timezone')}, but "
            f"SHOPSTREAM_BUSINESS_TIMEZONE is {timezone}; set it back, or {fix}"
        )


# Secondary indexes earlier versions created. No reader uses them (every read is by `_id`:
# the Customer page's history is in PostgreSQL since layout 4), and each one costs every write:
# on FerretDB's SQLite backend an insert parses the whole document again per indexed field
# (measured: 12-15 % of a bare `insert_many` loop's rate for the orders index alone).
_UNUSED_INDEXES = {
    ROLLUP_MINUTE: [("minute", ASCENDING)],
    ROLLUP_HOUR: [("hour", ASCENDING)],
    ROLLUP_DAY_PRODUCT: [("day", ASCENDING)],
    ORDERS: [("customer.id", ASCENDING), ("created_at", DESCENDING)],
}


def drop_unused_indexes(db: Database[dict[str, Any]]) -> list[str]:
    """Drops the secondary indexes earlier versions created (only those: an index a user
    added for their own queries stays); returns `collection.index` of each one dropped."""
    dropped = []
    for collection, keys in _UNUSED_INDEXES.items():
        for name, info in db[collection].index_information().items():
            if [(k, int(d)) for k, d in info["key"]] == keys:
                db[collection].drop_index(name)
                dropped.append(f"{collection}.{name}")
    return dropped
