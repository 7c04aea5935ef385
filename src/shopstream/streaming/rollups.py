"""Rollup arithmetic: what orders add to the serving buckets (pure; no I/O).

A bucket is a `(kind, key)` with labels and counters (orders, units, exact `sales_cents`,
distinct `customers` for days):

- `minute` `"2026-11-28T14:05Z"` and `minute_category` `"2026-11-28T14:05Z|Books"` (`orders`
  counts the orders with at least one line in the category);
- `day` `"2026-11-28"`, with distinct customers (from the sink's `day|customer` markers);
- `day_product` `"2026-11-28|42"`: a product's orders, units and sales of the day so far.

`streaming.rollup_store` decides which document holds each bucket and writes them exactly
once per batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shopstream.domain.documents import customer_day_key, minute_key

__all__ = [
    "COUNTS",
    "DAY",
    "DAY_PRODUCT",
    "MINUTE",
    "MINUTE_CATEGORY",
    "Delta",
    "Deltas",
    "add_customers",
    "customer_day",
    "marker_document",
    "merge",
    "order_deltas",
    "recompute",
    "split_key",
]

MINUTE, MINUTE_CATEGORY, DAY, DAY_PRODUCT = "minute", "minute_category", "day", "day_product"
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


def _bump(
    deltas: Deltas, collection: str, key: str, labels: dict[str, Any], units: int, cents: int
) -> None:
    # The hot path of `order_deltas` (~60% faster than `_add`'s keyword `update`).
    delta = deltas.get((collection, key))
    if delta is None:
        delta = deltas[(collection, key)] = Delta(labels)
    counts = delta.counts
    counts["orders"] += 1
    counts["units"] += units
    counts["sales_cents"] += cents


def customer_day(order: Mapping[str, Any]) -> str:
    """The `day|customer` marker key of an order document."""
    return customer_day_key(order["day"], order["customer"]["id"])


def split_key(key: str) -> tuple[str, str]:
    """`minute_category` and `day_product` keys: (the minute or day, the category or product)."""
    head, tail = key.split("|", 1)
    return head, tail


def order_deltas(orders: Iterable[Mapping[str, Any]], deltas: Deltas | None = None) -> Deltas:
    """What `orders` (enriched order documents) add to the rollups, distinct customers aside."""
    deltas = {} if deltas is None else deltas
    minutes: dict[tuple[int, ...], tuple[datetime, str]] = {}
    for order in orders:
        created: datetime = order["created_at"]
        at = created.timetuple()[:5]
        if at not in minutes:
            minute = created.replace(second=0, microsecond=0)
            minutes[at] = (minute, minute_key(minute))
        minute, minute_id = minutes[at]
        day = order["day"]
        total = units = 0
        by_category: dict[str, list[int]] = {}
        by_product: dict[int, list[Any]] = {}
        for item in order["items"]:
            quantity, cents = item["quantity"], _cents(item["line_total"])
            total += cents
            units += quantity
            line = by_category.setdefault(item["category"], [0, 0])
            line[0] += quantity
            line[1] += cents
            line = by_product.setdefault(item["product_id"], [0, 0, item])
            line[0] += quantity
            line[1] += cents
        _bump(deltas, MINUTE, minute_id, {"minute": minute, "day": day}, units, total)
        _bump(deltas, DAY, day, {"day": day}, units, total)
        for category, (quantity, cents) in by_category.items():
            labels = {"minute": minute, "day": day, "category": category}
            key = f"{minute_id}|{category}"
            _bump(deltas, MINUTE_CATEGORY, key, labels, quantity, cents)
        for product_id, (quantity, cents, item) in by_product.items():
            key = f"{day}|{product_id}"
            labels = {"day": day, "product_id": product_id, "name": item["name"],
                      "category": item["category"]}  # fmt: skip
            _bump(deltas, DAY_PRODUCT, key, labels, quantity, cents)
    return deltas


def marker_document(key: str, owner: str) -> dict[str, Any]:
    """The `rollup_customer_day` marker of a (day, customer): `owner` names the batch and the
    order that set it (`<batch token>|<order id>`)."""
    day, customer = key.split("|", 1)
    return {"_id": key, "day": day, "customer_id": int(customer), "owner": owner}


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
    return add_customers(deltas, {customer_day(o) for o in orders})
