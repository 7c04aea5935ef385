"""Order documents with known contents, written through the streaming job's own writers, and
the brute-force answers a dashboard query must match."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shopstream.config import Settings
from shopstream.domain.documents import batch_token
from shopstream.store.protocols import Store
from shopstream.streaming import sink

__all__ = ["CATEGORIES", "Expected", "expected", "order_doc", "random_orders", "write_orders"]

CATEGORIES = ("Books", "Toys", "Garden", "Kitchen", "Sports", "Music", "Beauty", "Office")


def order_doc(
    customer: int, at: datetime, lines: Sequence[tuple[int, int, int]], oid: str | None = None
) -> dict[str, Any]:
    """An enriched order like the job writes: `lines` are (product id, quantity, unit cents);
    product p is in category CATEGORIES[p % 8] and named `Product p`."""
    items = [
        {
            "product_id": p,
            "name": f"Product {p}",
            "category": CATEGORIES[p % len(CATEGORIES)],
            "unit_price": cents / 100,
            "quantity": qty,
            "line_total": cents * qty / 100,
        }
        for p, qty, cents in lines
    ]
    oid = oid or str(uuid.uuid4())
    return {
        "_id": oid,
        "order_id": oid,
        "created_at": at,
        "day": at.strftime("%Y-%m-%d"),
        "customer": {"id": customer, "name": f"Customer {customer}", "segment": "consumer"},
        "items": items,
        "item_count": len(items),
        "units": sum(q for _, q, _ in lines),
        "order_total": sum(c * q for _, q, c in lines) / 100,
        "ingest": {"query_id": "test", "batch_id": 0, "kafka_timestamp": at},
    }


def random_orders(now: datetime, count: int, days: int, seed: int = 1) -> list[dict[str, Any]]:
    """`count` orders over the `days` before `now`, half of them in its last two hours (so
    every window has data), from 80 customers and 30 products; a quarter of them (among the
    older half) reached Kafka only at `now`, as an import of history does."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        back = rng.uniform(0, 7200) if i % 2 else rng.uniform(0, days * 86400)
        at = (now - timedelta(seconds=back)).replace(microsecond=rng.randrange(0, 10**6, 1000))
        lines = [(rng.randint(1, 30), rng.randint(1, 4), rng.randint(99, 9999))
                 for _ in range(rng.randint(1, 3))]  # fmt: skip
        doc = order_doc(rng.randint(1, 80), at, lines, oid=f"order-{seed}-{i:05d}")
        if i % 4 == 0:  # history received only now (late, unless within the last 2 hours)
            doc["received_at"] = doc["ingest"]["kafka_timestamp"] = now
        out.append(doc)
    return out


def write_orders(
    store: Store, orders: list[dict[str, Any]], zone: ZoneInfo, settings: Settings
) -> None:
    """Stores `orders` as one batch of the streaming job would, through its own code: the
    sink's `write_enriched` (the orders, their `day|customer` markers, the customers'
    histories) and the driver's `BatchWrites` (rollups, customer sets), days cut in `zone`;
    `settings` give the stack's servers."""
    s = settings.model_copy(update={"mongo_database": store.name, "business_timezone": zone.key})
    store.rollups.ensure_layout(zone)
    config = sink.sink_config(s)
    query = f"test-{uuid.uuid4().hex[:8]}"
    try:
        written = sink.write_enriched(orders, config, query, 0)
    finally:
        sink.close(config)
    driver = sink.BatchWrites(store)
    try:
        driver.apply(batch_token(query, 0), written)
    finally:
        driver.close()


@dataclass(frozen=True)
class Expected:
    orders: int
    units: int
    sales_cents: int
    customers: int


def _cents(order: dict[str, Any]) -> int:
    return sum(round(i["line_total"] * 100) for i in order["items"])


def expected(orders: Iterable[dict[str, Any]], start: datetime, end: datetime) -> Expected:
    """What a window [start, end) holds, counted order by order."""
    inside = [o for o in orders if start <= o["created_at"] < end]
    return Expected(
        orders=len(inside),
        units=sum(o["units"] for o in inside),
        sales_cents=sum(_cents(o) for o in inside),
        customers=len({o["customer"]["id"] for o in inside}),
    )


def at_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
