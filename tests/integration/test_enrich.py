"""Enrichment with real Kafka, PostgreSQL, the MongoDB role and Spark."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from confluent_kafka import Producer
from pyspark.sql import SparkSession

from shopstream.config import Settings
from shopstream.domain.windows import Span
from shopstream.store.ferretdb import open_store
from shopstream.streaming.job import start_enrich_query
from tests.integration.conftest import job_settings

pytestmark = pytest.mark.integration


def wait_for(check: Callable[[], bool], timeout: float = 90, why: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in time {why()}")
        time.sleep(0.5)


def test_every_order_becomes_one_enriched_document_or_one_dead_letter(
    spark: SparkSession, stack: Settings, api: httpx.Client, tmp_path: Path
) -> None:
    settings = job_settings(stack, tmp_path)
    with psycopg.connect(stack.postgres_url) as conn:
        prices = dict(conn.execute("SELECT id, price FROM products").fetchall())
    orders = [
        {
            "order_id": str(uuid.uuid4()),
            "customer_id": c,
            "created_at": "2026-11-25T12:00:00Z",
            "items": [
                {"product_id": c % 50 + 1, "quantity": c % 3 + 1},
                {"product_id": c % 7 + 51, "quantity": 1},
            ],
        }
        for c in range(1, 31)
    ]
    assert api.post("/orders", json={"orders": orders}).status_code == 202
    bad = {
        "malformed": b"{oops",
        "unknown": json.dumps(
            {
                "schema_version": 1,
                "order_id": str(uuid.uuid4()),
                "customer_id": 987654,
                "created_at": "2026-11-25T12:00:00Z",
                "received_at": "2026-11-25T12:00:00Z",
                "items": [{"product_id": 1, "quantity": 1}],
            }
        ).encode(),
    }
    producer = Producer({"bootstrap.servers": stack.kafka_servers})
    for value in bad.values():
        producer.produce(stack.orders_topic, value)
    assert producer.flush(10) == 0

    query = start_enrich_query(spark, settings)
    store = open_store(settings, app="shopstream-test")

    def stored(order_id: str) -> dict[str, Any] | None:
        return store.orders.orders([order_id])[0]

    try:
        ids = [o["order_id"] for o in orders]
        wait_for(lambda: None not in store.orders.orders(ids))
        for order in orders:
            doc = stored(order["order_id"])
            assert doc is not None
            expected = sum(prices[i["product_id"]] * i["quantity"] for i in order["items"])
            assert Decimal(str(doc["order_total"])) == expected
            assert doc["customer"]["id"] == order["customer_id"]
            assert [i["product_id"] for i in doc["items"]] == [
                i["product_id"] for i in order["items"]
            ]
            assert all(
                Decimal(str(i["line_total"])) == prices[i["product_id"]] * i["quantity"]
                for i in doc["items"]
            )
            assert doc["day"] == "2026-11-25"
        wait_for(lambda: len(store.dead_letters.newest(include_replayed=True)) >= 2)
        reasons = {d.payload: d.reason for d in store.dead_letters.newest(include_replayed=True)}
        assert reasons["{oops"] == "malformed_json"
        assert reasons[bad["unknown"].decode()] == "unknown_customer"

        # A customer who signs up while the job runs is enriched, not dead-lettered.
        with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
            (new_id,) = conn.execute(
                "INSERT INTO customers (name, email, city, country, segment, signup_at) VALUES "
                "('Grace Hopper', 'grace@example.com', 'Arlington', 'US', 'corporate', now()) "
                "RETURNING id"
            ).fetchone()  # type: ignore[misc]
        late = {
            "order_id": str(uuid.uuid4()),
            "customer_id": new_id,
            "items": [{"product_id": 2, "quantity": 1}],
        }
        assert api.post("/order", json=late).status_code == 202
        wait_for(lambda: stored(late["order_id"]) is not None)
        assert stored(late["order_id"])["customer"]["name"] == "Grace Hopper"  # type: ignore[index]
        assert None not in store.orders.orders(ids)  # (an `_id` is one document)

        # A resend of an order (here even with other quantities) is a duplicate: the first
        # record stays the order, and the rollups count it once.
        resend = {**orders[0], "items": [{"product_id": 1, "quantity": 9}]}
        marker = {"order_id": str(uuid.uuid4()), "customer_id": 1, "items": resend["items"]}
        assert api.post("/orders", json={"orders": [resend, marker]}).status_code == 202
        wait_for(lambda: stored(marker["order_id"]) is not None)
        first = stored(orders[0]["order_id"])
        assert first is not None
        assert [i["quantity"] for i in first["items"]] == [
            i["quantity"] for i in orders[0]["items"]
        ]
        diffs: list[str] = []

        def exact() -> bool:
            diffs[:] = store.rollups.check(ZoneInfo("UTC"), stack.postgres_url)
            return not diffs

        wait_for(exact, why=lambda: "; ".join(diffs[:10]))
        start = datetime(2026, 11, 25, tzinfo=UTC)
        reader = store.rollups.reader(ZoneInfo("UTC"), closed_ttl_s=0)
        day = reader.totals(Span(start, start + timedelta(days=1)), start + timedelta(days=2))
        assert (day.orders, day.customers) == (30, 30)
    finally:
        query.stop()
        store.drop()
        store.close()
