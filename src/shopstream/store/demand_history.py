"""Daily demand: each product's units, orders and revenue of a business day, from the stream's
exact rollups, stored as `daily_demand` and folded into the detector's `demand_history`.

The source is `rollup_day_product` (the streaming job's per-business-day product counters,
exact through replays): 64 point lookups give every product of a day, never a scan of
`orders`. The store's units by local hour come from `rollup_hour` (UTC hours; a business
timezone whose offset is not whole hours gets its hours at UTC-hour granularity).

Documents (docs/spikes.md):

- `daily_demand` `"2026-11-28"`: every product sold that day (`products`: product_id, name,
  category, units, orders, revenue_cents, revenue), the day's totals and `hours` (the store's
  units by local hour, for the intraday rule);
- `demand_history` `"2026Q4|07"`: for the products of shard 7 (product_id % 64), their daily
  units of the quarter, little-endian int32 indexed by day of the quarter (`units[0]` is its
  first day), as BSON binary: FerretDB v1 converts every array element on every read (a shard
  of 156 products' year took 560 ms as an int array, 41 ms as binary), and a quarter is what a
  day's run rewrites (a year per document made a 10,000-product run rewrite 15 MB);
  `"2026Q4|07|orders"`: the same products' daily orders (orders containing the product), in
  the same encoding, apart from the units so that a run reads only the quarters its noise
  test needs (the last 90 days) and never a 365-day lookback's older orders;
  `"2026Q4|days"`: the days of the quarter the history holds (a day missing here was never
  loaded, as opposed to a day without sales), with the store's totals and hours of each, and
  the quarter's `layout` (a quarter of an older layout counts as not loaded: the next run
  loads its days again from the rollups, which keep them);
  `"first_sales"`: each product's first day with sales (where its zero-filled history starts).

A run rewrites whole documents (one writer at a time: `shopstream.store.leases`), so loading
a day again gives the same documents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import numpy as np
from bson import Binary
from pymongo import ReplaceOne
from pymongo.database import Database

from shopstream.domain import clock
from shopstream.domain.documents import (
    DAILY_DEMAND,
    DEMAND_HISTORY,
    FIRST_SALES_KEY,
    PRODUCT_SHARDS,
    ROLLUP_DAY_PRODUCT,
    ROLLUP_HOUR,
    day_products_keys,
    history_calendar_key,
    history_orders_key,
    history_period,
    history_shard_key,
    hour_key,
)
from shopstream.failpoints import failpoint
from shopstream.store.mongo import find_each
from shopstream.store.records import DayDemand, History

__all__ = [
    "DayDemand",
    "History",
    "decode_units",
    "encode_units",
    "load_days",
    "loaded_days",
    "period_start",
    "periods_between",
    "read_day",
    "read_history",
    "stored_day",
]

_PERIOD_DAYS = 92  # the longest quarter
LAYOUT = 2  # 1: units only; 2: orders beside them (issue 21)
_UNITS = np.dtype("<i4")  # the history's encoding (`units_encoding` in each document)


def encode_units(units: np.ndarray) -> Binary:
    return Binary(np.asarray(units, dtype=_UNITS).tobytes())


def decode_units(data: bytes) -> np.ndarray:
    """A quarter of daily units from a history entry (a writable copy)."""
    return np.frombuffer(data, dtype=_UNITS).astype(np.int64)


def _day_document(d: DayDemand, timezone: str) -> dict[str, Any]:
    iso = d.day.isoformat()
    return {
        "_id": iso,
        "day": iso,
        "timezone": timezone,
        "products": d.products,
        "totals": {
            "products": len(d.products),
            "units": d.units,
            "product_orders": d.orders,
            "revenue_cents": d.revenue_cents,
            "revenue": d.revenue_cents / 100,
        },
        "hours": d.hours,
        "source": ROLLUP_DAY_PRODUCT,
        "computed_at": datetime.now(UTC),
    }


def read_day(db: Database[dict[str, Any]], day: date, tz: tzinfo) -> DayDemand:
    """A business day's demand from the stream's rollups (64 + ~24 point lookups)."""
    iso = day.isoformat()
    products = []
    for doc in find_each(db[ROLLUP_DAY_PRODUCT], day_products_keys(iso)):
        for entry in (doc or {}).get("products", []):
            if int(entry.get("units", 0)) <= 0:
                continue
            cents = int(entry.get("sales_cents", 0))
            products.append(
                {
                    "product_id": int(entry["product_id"]),
                    "name": entry.get("name"),
                    "category": entry.get("category"),
                    "units": int(entry["units"]),
                    "orders": int(entry.get("orders", 0)),
                    "revenue_cents": cents,
                    "revenue": cents / 100,
                }
            )
    products.sort(key=lambda p: p["product_id"])
    start, end = clock.day_bounds(day, tz)
    first = start.replace(minute=0, second=0, microsecond=0)
    hours = [first + timedelta(hours=i) for i in range(int((end - first).total_seconds() // 3600))]
    by_hour = [0] * 24
    for hour, doc in zip(
        hours, find_each(db[ROLLUP_HOUR], [hour_key(h) for h in hours]), strict=True
    ):
        if doc:
            local = max(hour, start).astimezone(tz)
            by_hour[local.hour] += int(doc.get("units", 0))
    return DayDemand(day, products, by_hour)


def period_start(period: str) -> date:
    year, quarter = period.split("Q")
    return date(int(year), 3 * (int(quarter) - 1) + 1, 1)


def _period_end(first: date) -> date:
    """The last day of the quarter starting on `first` (quarters are 90 to 92 days)."""
    return period_start(history_period(first + timedelta(days=_PERIOD_DAYS))) - timedelta(days=1)


def _index(day: date) -> int:
    """The day's slot in its quarter's arrays."""
    return (day - period_start(history_period(day))).days


def periods_between(start: date, end: date) -> list[str]:
    """The quarters (`2026Q4`) that days [start, end] fall in, in order."""
    found: list[str] = []
    day = start
    while day <= end:
        if not found or found[-1] != history_period(day):
            found.append(history_period(day))
        day += timedelta(days=1)
    return found


def load_days(db: Database[dict[str, Any]], days: Sequence[DayDemand], timezone: str) -> None:
    """Stores days' demand: `daily_demand`, the first sales, then the history (each quarter's
    shard documents and calendar read and rewritten once however many days).

    The order makes a crash anywhere safe: a day is loaded once its quarter's calendar names
    it, and that is written last; everything before it is rewritten by the next run, which
    loads every day the calendar lacks. (The first sales before the calendar: a first sale
    only moves earlier, so writing it early is never wrong, and written after the calendar a
    crash in between left loaded days whose first sales no rerun would add.)"""
    if not days:
        return
    db[DAILY_DEMAND].bulk_write(
        [
            ReplaceOne({"_id": d.day.isoformat()}, _day_document(d, timezone), upsert=True)
            for d in days
        ],
        ordered=False,
    )
    first = db[DEMAND_HISTORY].find_one({"_id": FIRST_SALES_KEY}) or {"products": {}}
    firsts: dict[str, str] = dict(first.get("products", {}))
    for d in days:
        iso = d.day.isoformat()
        for p in d.products:
            key = str(p["product_id"])
            if key not in firsts or iso < firsts[key]:
                firsts[key] = iso
    db[DEMAND_HISTORY].replace_one(
        {"_id": FIRST_SALES_KEY}, {"_id": FIRST_SALES_KEY, "products": firsts}, upsert=True
    )
    by_period: dict[str, list[DayDemand]] = defaultdict(list)
    for d in days:
        by_period[history_period(d.day)].append(d)
    for period, group in sorted(by_period.items()):
        _load_period(db, period, group)


def _shard_document(
    key: str, period: str, shard: int, entries: dict[int, np.ndarray], field: str
) -> dict[str, Any]:
    return {
        "_id": key,
        "period": period,
        "first_day": period_start(period).isoformat(),
        "shard": shard,
        f"{field}_encoding": "int32 little-endian, index = day of the quarter",
        "products": [{"product_id": p, field: encode_units(entries[p])} for p in sorted(entries)],
    }


def _load_period(db: Database[dict[str, Any]], period: str, days: Iterable[DayDemand]) -> None:
    days = list(days)
    coll = db[DEMAND_HISTORY]
    cal_key = history_calendar_key(period)
    calendar = coll.find_one({"_id": cal_key}) or {}
    if calendar.get("layout", 1) < LAYOUT:  # days loaded without orders: loaded again
        calendar = {"_id": cal_key, "period": period, "layout": LAYOUT, "days": {}}
    series: dict[str, dict[int, dict[int, np.ndarray]]] = {"units": {}, "orders": {}}
    keys = {
        "units": [history_shard_key(period, s) for s in range(PRODUCT_SHARDS)],
        "orders": [history_orders_key(period, s) for s in range(PRODUCT_SHARDS)],
    }
    for field, shard_keys in keys.items():
        for shard, doc in enumerate(find_each(coll, shard_keys)):
            series[field][shard] = {
                int(e["product_id"]): decode_units(e[field])
                for e in (doc or {}).get("products", [])
            }
    for d in days:
        index = _index(d.day)
        for field in ("units", "orders"):
            sold = {p["product_id"]: int(p[field]) for p in d.products}
            shards = series[field]
            for pid in sold:
                shards[pid % PRODUCT_SHARDS].setdefault(pid, np.zeros(_PERIOD_DAYS, np.int64))
            for entries in shards.values():
                for pid, values in entries.items():
                    values[index] = sold.get(pid, 0)
    writes = [
        ReplaceOne(
            {"_id": keys[field][shard]},
            _shard_document(keys[field][shard], period, shard, entries, field),
            upsert=True,
        )
        for field in ("units", "orders")
        for shard, entries in series[field].items()
        if entries
    ]
    if writes:
        coll.bulk_write(writes, ordered=False)
    failpoint("demand.before_calendar")
    for d in days:
        calendar["days"][d.day.isoformat()] = {
            "units": d.units,
            "revenue_cents": d.revenue_cents,
            "products": len(d.products),
            "hours": d.hours,
        }
    calendar["days"] = dict(sorted(calendar["days"].items()))
    coll.replace_one({"_id": cal_key}, calendar, upsert=True)


def _calendar_days(doc: dict[str, Any] | None) -> dict[str, Any]:
    """A quarter calendar's loaded days (none for a quarter of an older layout)."""
    if not doc or doc.get("layout", 1) < LAYOUT:
        return {}
    return dict(doc.get("days") or {})


def read_history(
    db: Database[dict[str, Any]], start: date, end: date, orders_from: date | None = None
) -> History:
    """The history of days [start, end]: one calendar and `PRODUCT_SHARDS` shard lookups per
    quarter spanned (two for a 90-day lookback), and the first sales; the daily orders too,
    of the days from `orders_from` (default `start`) on: `PRODUCT_SHARDS` lookups more per
    quarter they span."""
    n = (end - start).days + 1
    orders_from = max(start, orders_from or start)
    periods = periods_between(start, end)
    order_periods = periods_between(orders_from, end) if orders_from <= end else []
    coll = db[DEMAND_HISTORY]
    keys = [history_calendar_key(p) for p in periods]
    keys += [f"{p}|{s:02d}" for p in periods for s in range(PRODUCT_SHARDS)]
    keys += [history_orders_key(p, s) for p in order_periods for s in range(PRODUCT_SHARDS)]
    keys.append(FIRST_SALES_KEY)
    docs = dict(zip(keys, find_each(coll, keys), strict=True))
    first_doc = docs[FIRST_SALES_KEY] or {}
    loaded = np.zeros(n, dtype=bool)
    store_units = np.zeros(n, dtype=np.int64)
    store_hours = np.zeros((n, 24), dtype=np.int64)
    rows: dict[str, dict[int, np.ndarray]] = {"units": {}, "orders": {}}
    for period in periods:
        first = period_start(period)
        lo = max(start, first)
        hi = min(end, _period_end(first))
        a, b = (lo - start).days, (hi - start).days + 1  # columns of this quarter
        i, j = (lo - first).days, (hi - first).days + 1  # slots in its arrays
        for iso, info in _calendar_days(docs.get(history_calendar_key(period))).items():
            col = (date.fromisoformat(iso) - start).days
            if 0 <= col < n:
                loaded[col] = True
                store_units[col] = int(info.get("units", 0))
                store_hours[col] = info.get("hours") or [0] * 24
        sources = [("units", f"{period}|{s:02d}") for s in range(PRODUCT_SHARDS)]
        if period in order_periods:
            sources += [("orders", history_orders_key(period, s)) for s in range(PRODUCT_SHARDS)]
        for field, key in sources:
            for entry in (docs.get(key) or {}).get("products", []):
                pid = int(entry["product_id"])
                row = rows[field].get(pid)
                if row is None:
                    row = rows[field][pid] = np.zeros(n, dtype=np.int64)
                row[a:b] = decode_units(entry[field])[i:j]
    ids = np.array(sorted(rows["units"]), dtype=np.int64)
    empty = np.zeros((0, n), dtype=np.int64)
    units = np.stack([rows["units"][p] for p in ids]) if len(ids) else empty
    zero = np.zeros(n, dtype=np.int64)
    orders = np.stack([rows["orders"].get(p, zero) for p in ids]) if len(ids) else empty
    firsts = {int(k): date.fromisoformat(v) for k, v in first_doc.get("products", {}).items()}
    return History(
        start,
        ids,
        units,
        loaded,
        store_units,
        store_hours,
        firsts,
        orders=orders,
        orders_from=orders_from if order_periods else None,
    )


def loaded_days(db: Database[dict[str, Any]], start: date, end: date) -> set[date]:
    """The days in [start, end] the history holds (loaded, with or without sales)."""
    keys = [history_calendar_key(p) for p in periods_between(start, end)]
    found: set[date] = set()
    for doc in find_each(db[DEMAND_HISTORY], keys):
        found.update(date.fromisoformat(d) for d in _calendar_days(doc))
    return {d for d in found if start <= d <= end}


def stored_day(db: Database[dict[str, Any]], day: date) -> DayDemand:
    """A day's demand as `load_days` stored it (`daily_demand`; empty if never loaded)."""
    doc = db[DAILY_DEMAND].find_one({"_id": day.isoformat()}) or {}
    return DayDemand(day, list(doc.get("products", [])), list(doc.get("hours") or [0] * 24))
