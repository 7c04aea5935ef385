"""The dashboard benchmark: a store of millions of orders, and how long each page's reads take.

1. `build_store`: N orders over D days, written through the streaming job's own code (the
   sink's `write_enriched`: orders, `day|customer` markers, histories; then the driver's
   `BatchWrites`: rollups and customer sets), in time order, in chunks like the job's catch-up
   batches. No API, no Kafka: minutes instead of hours.
2. `time_pages`: every page's refresh at every window, as the dashboard runs them (the
   Overview's KPIs + trend + top products + freshness; the Customer page's search + history;
   Pipeline health's documents), with the reader's cache and a simulated 5 s refresh clock
   (so the cache's expiries are inside the measurement): p50 / p95 / max per page and window,
   and the first (cold) load apart.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from shopstream.config import Settings
from shopstream.domain.documents import batch_token
from shopstream.domain.windows import WINDOWS
from shopstream.store.customer_pages import history, search
from shopstream.store.ferretdb import open_store
from shopstream.store.protocols import Store
from shopstream.streaming import sink

__all__ = ["StoreSpec", "build_store", "generate", "time_pages"]

_CATEGORIES = [f"Category {i:02d}" for i in range(25)]


@dataclass(frozen=True)
class StoreSpec:
    orders: int = 5_000_000
    days: int = 90
    customers: int = 200_000
    products: int = 1_000
    chunk: int = 50_000
    seed: int = 8


def generate(spec: StoreSpec, end: datetime) -> Iterator[list[dict[str, Any]]]:
    """The orders, oldest first, in chunks: a daily cycle, Zipf-like product popularity,
    1-4 lines, customers skewed (a few order often)."""
    rng = random.Random(spec.seed)
    start = end - timedelta(days=spec.days)
    span = (end - start).total_seconds()
    weights = [1 / (i + 1) ** 0.8 for i in range(spec.products)]
    cumulative = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    prices = [rng.randint(199, 19999) for _ in range(spec.products)]
    # Times: uniform over the span, bent by a daily cycle, sorted per chunk (chunks in order).
    for first in range(0, spec.orders, spec.chunk):
        count = min(spec.chunk, spec.orders - first)
        lo = span * first / spec.orders
        hi = span * (first + count) / spec.orders
        offsets = sorted(rng.uniform(lo, hi) for _ in range(count))
        chunk = []
        for n, offset in enumerate(offsets):
            at = start + timedelta(seconds=offset)
            customer = int(spec.customers * rng.random() ** 1.6) + 1
            lines = []
            for _ in range(1 + int(rng.random() ** 2 * 4)):
                p = _pick(cumulative, rng.random() * total)
                lines.append((p + 1, 1 + int(rng.random() ** 3 * 4), prices[p]))
            chunk.append(_order(f"b{spec.seed}-{first + n:08d}", customer, at, lines))
        yield chunk


def _pick(cumulative: list[float], x: float) -> int:
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _order(
    oid: str, customer: int, at: datetime, lines: list[tuple[int, int, int]]
) -> dict[str, Any]:
    items = [
        {"product_id": p, "name": f"Product {p}", "category": _CATEGORIES[p % 25],
         "unit_price": cents / 100, "quantity": q, "line_total": cents * q / 100}
        for p, q, cents in lines
    ]  # fmt: skip
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    return {
        "_id": oid, "order_id": oid, "created_at": at, "day": at.strftime("%Y-%m-%d"),
        "customer": {"id": customer, "name": f"Customer {customer}", "segment": "consumer"},
        "items": items, "item_count": len(items), "units": sum(q for _, q, _ in lines),
        "order_total": sum(c * q for _, q, c in lines) / 100,
        "ingest": {"query_id": "bench", "batch_id": 0, "kafka_timestamp": at},
    }  # fmt: skip


def build_store(
    settings: Settings,
    spec: StoreSpec,
    end: datetime,
    report: Callable[[str], None],
) -> dict[str, Any]:
    """Writes the store of `settings` (its database, business timezone and PostgreSQL) through
    the job's own writers; returns what it wrote and how long each part took."""
    store = open_store(settings, app="shopstream-bench")
    config = sink.sink_config(settings)
    store.rollups.ensure_layout(settings.clock.zone)
    store.rollups.drop_unused_indexes()
    driver = sink.BatchWrites(store, cache_size=5_000)
    seconds = {"generate": 0.0, "orders": 0.0, "markers": 0.0, "history": 0.0, "driver": 0.0}
    written = 0
    started = clock = time.monotonic()
    try:
        for number, chunk in enumerate(generate(spec, end)):
            now = time.monotonic()
            seconds["generate"] += now - clock
            result = sink.write_enriched(chunk, config, "bench", number)
            for phase in ("orders", "markers", "history"):
                seconds[phase] += result.seconds.get(phase, 0.0)
            clock = time.monotonic()
            driver.apply(batch_token("bench", number), result)
            seconds["driver"] += (now := time.monotonic()) - clock
            clock = now
            written += len(chunk)
            rate = written / (now - started)
            left = (spec.orders - written) / rate if rate else math.inf
            report(
                f"{written:,} / {spec.orders:,} orders, {rate:,.0f}/s, ~{left / 60:.0f} min left"
            )
    finally:
        driver.close()
        sink.close(config)
        store.close()
    return {
        "spec": asdict(spec),
        "timezone": settings.business_timezone,
        "end": end.isoformat(),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "total_s": round(time.monotonic() - started, 1),
    }


class _Clock:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def time_pages(
    store: Store,
    conn: psycopg.Connection[Any],
    zone: ZoneInfo,
    now: datetime,
    refreshes: int,
    refresh_s: float = 5.0,
    cache_s: float = 60.0,
    customers: int = 200_000,
) -> dict[str, Any]:
    """Each page's reads per refresh, at every window, as the dashboard does them."""
    out: dict[str, Any] = {"overview": {}, "refresh_s": refresh_s, "cache_s": cache_s}
    for window in WINDOWS:
        clock = _Clock()
        reader = store.rollups.reader(zone, closed_ttl_s=cache_s, clock=clock)
        at = now
        times = []
        for _ in range(refreshes + 1):
            began = time.perf_counter()
            reader.kpis(window, at)
            reader.trend(window, at, 5)
            reader.top_products(reader.today(at), 10)
            reader.freshness()
            times.append(time.perf_counter() - began)
            clock.value += refresh_s
            at += timedelta(seconds=refresh_s)
        out["overview"][window] = {"cold_ms": round(times[0] * 1000, 1), **_summary(times[1:])}
    rng = random.Random(3)
    searches, pages = [], []
    for _ in range(refreshes):
        prefix = rng.choice("abcdefghjklmnoprstw") + rng.choice("aeiou")
        began = time.perf_counter()
        search(conn, prefix)
        searches.append(time.perf_counter() - began)
        customer = int(customers * rng.random() ** 1.6) + 1  # the busier customers
        began = time.perf_counter()
        history(conn, store, customer, page=1 + rng.randrange(3))
        pages.append(time.perf_counter() - began)
    out["customer"] = {"search": _summary(searches), "history": _summary(pages)}
    health = []
    for _ in range(refreshes):
        began = time.perf_counter()
        store.status.query_lag("enrich", "orders", {"0": 0})
        store.status.query_lag("lake", "orders", {"0": 0})
        store.status.last_batches()
        store.status.dead_letter_counts()
        health.append(time.perf_counter() - began)
    out["health_documents"] = _summary(health)
    out["measured_at"] = datetime.now(UTC).isoformat()
    return out
