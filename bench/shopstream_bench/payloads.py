"""Realistic orders from the simulator's demand model, as request bodies and Kafka records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shopstream.domain import OrderIn
from shopstream.simulator import DemandModel
from shopstream.simulator.runner import load_catalog

__all__ = ["batch_bodies", "kafka_records", "order_bodies", "order_payloads"]

# A fixed business day, so the same seed gives the same orders on every run.
_DAY = datetime(2025, 3, 3, tzinfo=UTC)
_MAX_DAYS = 10


def order_payloads(dsn: str, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` `POST /order` bodies over the seeded catalog, ids all known to PostgreSQL."""
    products, customers = load_catalog(dsn)
    # A little more than `count` per day: the day's total is Poisson-distributed.
    model = DemandModel(products, customers, orders_per_day=count * 1.25, seed=seed)
    orders: list[dict[str, Any]] = []
    for day in range(_MAX_DAYS):
        lo = _DAY + timedelta(days=day)
        orders += model.generate(lo, lo + timedelta(days=1))
        if len(orders) >= count:
            return orders[:count]
    raise RuntimeError(f"the demand model gave {len(orders)} orders in {_MAX_DAYS} days")


def order_bodies(orders: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(o) for o in orders]


def batch_bodies(orders: list[dict[str, Any]], size: int) -> list[bytes]:
    """`POST /orders` bodies of exactly `size` orders each (a short tail is left out)."""
    if size > len(orders):
        raise ValueError(f"a batch of {size} needs at least {size} orders, got {len(orders)}")
    return [
        orjson.dumps({"orders": orders[i : i + size]})
        for i in range(0, len(orders) - size + 1, size)
    ]


def kafka_records(orders: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """(key, value) exactly as the API writes them: the validated event, keyed by customer."""
    received_at = datetime.now(UTC)
    events = [OrderIn.model_validate(o).to_event(received_at) for o in orders]
    return [(e.kafka_key(), e.model_dump_json().encode()) for e in events]
