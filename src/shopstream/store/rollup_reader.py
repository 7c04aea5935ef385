"""The Overview page's numbers, read from the streaming job's rollups by point lookups.

Every read is an `_id` lookup of a bounded set of small documents (FerretDB v1 scans for
anything else): the buckets that cover a window (`windows.cover`), the trend's buckets, a
day's 64 product shards, the all-time total. The one exception is the `all` trend, which reads
the `rollup_day` collection whole: one small document per business day.

`RollupReader` keeps the documents of closed buckets (ended more than `settle_s` ago) for
half to all of `closed_ttl_s` (spread per bucket, so they do not all expire in one refresh),
so an auto-refresh re-reads only the buckets still filling and a few expired ones; an order
that lands late in an old bucket (a backfill, a replayed dead letter) shows within
`closed_ttl_s`.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from pymongo.database import Database
from pyroaring import BitMap64

from shopstream.domain.documents import (
    CUSTOMER_SETS,
    ROLLUP_DAY,
    ROLLUP_DAY_PRODUCT,
    ROLLUP_HOUR,
    ROLLUP_MINUTE,
    ROLLUP_TOTAL,
    TOTAL_KEY,
    customer_set_key,
    day_products_keys,
    minute_hour_key,
)
from shopstream.domain.windows import (
    DAY,
    HOUR,
    MINUTE,
    Bucket,
    Span,
    cover,
    spans,
    trend_buckets,
)
from shopstream.store.customer_sets import bitmap, late_minute_bitmap, late_minutes_key
from shopstream.store.errors import translated
from shopstream.store.mongo import find_each
from shopstream.store.records import Freshness, Kpis, ProductRow, Totals, Trend
from shopstream.store.stream_status import enrich_status

__all__ = [
    "OTHER",
    "Freshness",
    "Kpis",
    "ProductRow",
    "RollupReader",
    "Totals",
    "Trend",
    "top_categories",
]

OTHER = "Other"
_COLLECTION = {MINUTE: ROLLUP_MINUTE, HOUR: ROLLUP_HOUR, DAY: ROLLUP_DAY}


def top_categories(by_category: dict[str, list[int]], n: int) -> dict[str, list[int]]:
    """The `n` categories with the most sales over all buckets, the rest summed as OTHER (ties
    broken by name, so the choice is stable between refreshes)."""
    ranked = sorted(by_category, key=lambda c: (-sum(by_category[c]), c))
    out = {c: by_category[c] for c in ranked[:n]}
    rest = ranked[n:]
    if rest:
        width = len(next(iter(by_category.values())))
        out[OTHER] = [sum(by_category[c][i] for c in rest) for i in range(width)]
    return out


class RollupReader:
    """Reads the rollups for the Overview page, keeping closed buckets for a while."""

    def __init__(
        self,
        db: Database[dict[str, Any]],
        tz: tzinfo,
        closed_ttl_s: float = 60.0,
        settle_s: float = 120.0,
        cache_size: int = 20_000,
        set_cache_size: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db, self.tz = db, tz
        self.closed_ttl_s, self.settle = closed_ttl_s, timedelta(seconds=settle_s)
        self.clock = clock
        self._docs = _Cache(cache_size)
        self._sets = _Cache(set_cache_size)

    # ------------------------------------------------------------------ reads with a cache

    def _ttl(self, key: str) -> float:
        """Between half and all of `closed_ttl_s`, fixed per key: the buckets a window reads
        were cached together, and would otherwise all expire in the same refresh (measured:
        a 30-day window's p95 was that one refresh in twelve)."""
        return self.closed_ttl_s * (0.5 + (zlib.crc32(key.encode()) % 1000) / 2000)

    def _read(
        self,
        cache: _Cache,
        collection: str,
        wanted: Sequence[tuple[str, datetime | None]],  # (_id, bucket end or None if open)
        now: datetime,
    ) -> dict[str, Any]:
        clock = self.clock()
        found: dict[str, Any] = {}
        missing = []
        for key, end in wanted:
            hit = cache.get((collection, key), clock)
            if hit is not _MISS:
                found[key] = hit
            else:
                missing.append((key, end))
        docs = find_each(self.db[collection], [k for k, _ in missing])
        for (key, end), doc in zip(missing, docs, strict=True):
            value = doc if cache is self._docs else bitmap(doc)
            found[key] = value
            if end is not None and end <= now - self.settle:
                cache.put((collection, key), value, clock + self._ttl(key))
        return found

    def _buckets(self, buckets: Iterable[Bucket], now: datetime) -> list[dict[str, Any] | None]:
        by_level: dict[str, list[Bucket]] = {}
        buckets = list(buckets)
        for b in buckets:
            by_level.setdefault(b.level, []).append(b)
        found: dict[tuple[str, str], Any] = {}
        for level, group in by_level.items():
            docs = self._read(self._docs, _COLLECTION[level], [(b.key, b.end) for b in group], now)
            found.update(((level, k), d) for k, d in docs.items())
        return [found[(b.level, b.key)] for b in buckets]

    def _customers(self, buckets: Iterable[Bucket], now: datetime) -> int:
        buckets = list(buckets)
        keys = [(customer_set_key(b.level, b.key), b.end) for b in buckets]
        sets = list(self._read(self._sets, CUSTOMER_SETS, keys, now).values())
        minutes = [b for b in buckets if b.level == MINUTE]
        if minutes:  # late orders' minutes live in one document per hour
            wanted = {late_minutes_key(b.key)[0]: _hour_end(b) for b in minutes}
            docs = self._read(self._docs, CUSTOMER_SETS, list(wanted.items()), now)
            sets += [late_minute_bitmap(docs[late_minutes_key(b.key)[0]], b.key) for b in minutes]
        return len(BitMap64.union(*sets)) if sets else 0

    def _late_minutes(self, buckets: Iterable[Bucket], now: datetime) -> list[dict[str, Any]]:
        """The late orders' entries (`rollup_hour.minutes`) of the minute buckets among
        `buckets`: a minute's numbers are its own document's plus this entry."""
        minutes = {b.key: b for b in buckets if b.level == MINUTE}
        if not minutes:
            return []
        wanted = {minute_hour_key(k): _hour_end(b) for k, b in minutes.items()}
        hours = self._read(self._docs, ROLLUP_HOUR, list(wanted.items()), now)
        return [
            entry
            for doc in hours.values()
            for entry in (doc or {}).get("minutes", [])
            if entry["minute_key"] in minutes
        ]

    # ------------------------------------------------------------------ the page's numbers

    @translated
    def totals(self, span: Span, now: datetime) -> Totals:
        """Orders, units, sales and distinct customers of a minute-aligned span, exactly."""
        buckets = cover(span, self.tz)
        docs = [d for d in self._buckets(buckets, now) if d] + self._late_minutes(buckets, now)
        return Totals(
            orders=sum(int(d.get("orders", 0)) for d in docs),
            units=sum(int(d.get("units", 0)) for d in docs),
            sales_cents=sum(int(d.get("sales_cents", 0)) for d in docs),
            customers=self._customers(buckets, now),
        )

    @translated
    def all_time(self) -> Totals:
        total = self.db[ROLLUP_TOTAL].find_one({"_id": TOTAL_KEY}) or {}
        everyone = self.db[CUSTOMER_SETS].find_one({"_id": TOTAL_KEY}, {"count": 1}) or {}
        return Totals(
            orders=int(total.get("orders", 0)),
            units=int(total.get("units", 0)),
            sales_cents=int(total.get("sales_cents", 0)),
            customers=int(everyone.get("count", 0)),
        )

    @translated
    def kpis(self, window: str, now: datetime) -> Kpis:
        current, previous = spans(window, now, self.tz)
        if current is None or previous is None:
            return Kpis(window, self.all_time(), None, None, None)
        return Kpis(
            window, self.totals(current, now), self.totals(previous, now), current, previous
        )

    @translated
    def first_day(self) -> date | None:
        """The oldest business day with orders (reads `rollup_day` ids: one per day)."""
        ids = [d["_id"] for d in self.db[ROLLUP_DAY].find({}, {"_id": 1})]
        return date.fromisoformat(min(ids)) if ids else None

    @translated
    def trend(self, window: str, now: datetime, top_n: int = 5) -> Trend:
        first = self.first_day() if window == "all" else None
        buckets = trend_buckets(window, now, self.tz, first)
        docs = self._buckets(buckets, now)
        by_category: dict[str, list[int]] = {}
        for i, doc in enumerate(docs):
            for entry in (doc or {}).get("categories", []):
                line = by_category.setdefault(entry["category"], [0] * len(buckets))
                line[i] = int(entry["sales_cents"])
        return Trend(
            granularity=buckets[0].level,
            starts=[b.start for b in buckets],
            orders=[int((d or {}).get("orders", 0)) for d in docs],
            sales_cents=[int((d or {}).get("sales_cents", 0)) for d in docs],
            categories=top_categories(by_category, top_n) if by_category else {},
        )

    @translated
    def top_products(self, day: date, n: int = 10) -> list[ProductRow]:
        """A business day's best sellers by sales (its 64 product shards)."""
        shards = find_each(self.db[ROLLUP_DAY_PRODUCT], day_products_keys(day.isoformat()))
        rows = [
            ProductRow(
                int(p["product_id"]),
                str(p.get("name", "")),
                str(p.get("category", "")),
                int(p["orders"]),
                int(p["units"]),
                int(p["sales_cents"]),
            )
            for shard in shards
            if shard
            for p in shard.get("products", [])
        ]
        return sorted(rows, key=lambda r: (-r.sales_cents, -r.units, r.product_id))[:n]

    @translated
    def freshness(self) -> Freshness:
        doc = enrich_status(self.db)
        return Freshness(
            newest_order_at=doc.get("newest_order_at"),
            last_batch_at=doc.get("finished_at"),
            last_batch_records=int(doc.get("records", 0)),
            last_batch_s=doc.get("duration_s"),
        )

    def today(self, now: datetime) -> date:
        return now.astimezone(self.tz).date()


def _hour_end(minute: Bucket) -> datetime:
    return minute.start.replace(minute=0) + timedelta(hours=1)


def _product_row(entry: dict[str, Any]) -> ProductRow:
    return ProductRow(
        product_id=int(entry["product_id"]),
        name=str(entry.get("name", "")),
        category=str(entry.get("category", "")),
        orders=int(entry["orders"]),
        units=int(entry["units"]),
        sales_cents=int(entry["sales_cents"]),
    )


_MISS = object()


class _Cache:
    """An LRU of values with expiry times, safe to share between Streamlit's session threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], clock: float) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < clock:
                return _MISS
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: tuple[str, str], value: Any, expires: float) -> None:
        with self._lock:
            self._items[key] = (expires, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
