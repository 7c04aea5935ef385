"""A small lake written by the real landing query, and what the warehouse must make of it."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import psycopg
from confluent_kafka import Producer
from pyspark.sql import SparkSession

from shopstream.config import Settings
from shopstream.streaming.lake import start_lake_query

__all__ = ["Expected", "SourceOrders", "expected_marts", "land", "post_orders", "produce_raw"]


@dataclass
class SourceOrders:
    """What was sent: the orders by day, and the Kafka records sent per day."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # order_id -> order
    records: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # day -> records
    rejects: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    produced: list[bytes] = field(default_factory=list)  # values sent past the API

    def of_day(self, day: str) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["created_at"][:10] == day]


def post_orders(
    api: httpx.Client, source: SourceOrders, day: str, count: int, seed: int, resend: int = 0
) -> list[dict[str, Any]]:
    """Posts `count` random orders of `day` (and `resend` of them a second time)."""
    rng = random.Random(seed)
    batch = []
    for _ in range(count):
        second = rng.randrange(86_400)
        batch.append({
            "order_id": str(uuid.uuid4()),
            "customer_id": rng.randint(1, 300),
            "created_at": f"{day}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z",
            "items": [
                {"product_id": p, "quantity": rng.randint(1, 4)}
                for p in rng.sample(range(1, 61), rng.randint(1, 4))
            ],
        })  # fmt: skip
    for chunk in (batch, batch[:resend]):
        if chunk:
            response = api.post("/orders", json={"orders": chunk})
            assert response.status_code == 202, response.text
            source.records[day] += len(chunk)
    source.orders.update({o["order_id"]: o for o in batch})
    return batch


def produce_raw(settings: Settings, source: SourceOrders, day: str, event: dict[str, Any]) -> None:
    """A record the API would refuse (e.g. an unknown customer), straight onto the topic."""
    producer = Producer({"bootstrap.servers": settings.kafka_servers})
    value = json.dumps(event).encode()
    producer.produce(settings.orders_topic, value)
    source.produced.append(value)
    assert producer.flush(10) == 0
    source.records[day] += 1
    source.rejects[day].append(event["order_id"])


def land(spark: SparkSession, settings: Settings) -> None:
    """The landing query, to the end of the topic (a batch run of the real streaming code)."""
    query = start_lake_query(spark, settings, available_now=True)
    query.awaitTermination(180)
    assert query.exception() is None


@dataclass
class Expected:
    orders: dict[str, tuple[int, int, Decimal]]  # order_id -> (customer, units, total)
    lines: int
    categories: dict[
        tuple[str, str], tuple[int, int, Decimal]
    ]  # (day, cat) -> orders, units, revenue
    products: dict[tuple[str, int], tuple[int, int]]  # (day, product) -> orders, units


def expected_marts(settings: Settings, orders: list[dict[str, Any]]) -> Expected:
    """The marts computed from the orders and PostgreSQL's prices, independently of dbt."""
    with psycopg.connect(settings.postgres_url) as conn:
        catalog = {
            r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, category, price FROM products")
        }
    out = Expected({}, 0, {}, {})
    cats: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [set(), 0, Decimal(0)])
    prods: dict[tuple[str, int], list[Any]] = defaultdict(lambda: [set(), 0])
    for o in orders:
        day, units, total = o["created_at"][:10], 0, Decimal(0)
        for item in o["items"]:
            category, price = catalog[item["product_id"]]
            q = item["quantity"]
            units, total = units + q, total + q * price
            c = cats[(day, category)]
            c[0].add(o["order_id"])
            c[1] += q
            c[2] += q * price
            p = prods[(day, item["product_id"])]
            p[0].add(o["order_id"])
            p[1] += q
            out.lines += 1
        out.orders[o["order_id"]] = (o["customer_id"], units, total)
    out.categories = {k: (len(v[0]), v[1], v[2]) for k, v in cats.items()}
    out.products = {k: (len(v[0]), v[1]) for k, v in prods.items()}
    return out
