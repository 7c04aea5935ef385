"""Order intake logic with in-memory stand-ins for Kafka and PostgreSQL (pure unit tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from shopstream.ingestion.intake import CatalogUnavailableError, OrderIntake
from shopstream.ingestion.metrics import IngestMetrics
from shopstream.ingestion.producer import ProduceError, Record

NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


class FakeProducer:
    def __init__(self, fail: frozenset[int] = frozenset()) -> None:
        self.records: list[Record] = []
        self.fail = fail  # customer ids whose records the "broker" refuses

    async def send_many(self, records: Sequence[Record]) -> list[ProduceError | None]:
        out: list[ProduceError | None] = []
        for r in records:
            if int(r.key) in self.fail:
                out.append(ProduceError("broker down", "transport"))
            else:
                self.records.append(r)
                out.append(None)
        return out


class FakeIds:
    def __init__(self, known: frozenset[int], broken: bool = False) -> None:
        self.known, self.broken = known, broken

    async def unknown(self, ids: set[int]) -> set[int]:
        if self.broken:
            raise OSError("connection refused")
        return ids - self.known


def intake(
    producer: FakeProducer,
    customers: frozenset[int] = frozenset({1, 2, 3}),
    products: frozenset[int] = frozenset({10, 11}),
    broken: bool = False,
) -> tuple[OrderIntake, IngestMetrics]:
    metrics = IngestMetrics(CollectorRegistry())
    it = OrderIntake(
        "orders",
        producer,
        FakeIds(customers, broken),
        FakeIds(products),
        metrics,
        clock=lambda: NOW,
    )
    return it, metrics


def run(it: OrderIntake, orders: list[Any]) -> list[Any]:
    return asyncio.run(it.submit(orders))


def good(customer: int = 1, **kw: Any) -> dict[str, Any]:
    return {"customer_id": customer, "items": [{"product_id": 10, "quantity": 1}], **kw}


def test_each_order_gets_one_outcome_in_input_order() -> None:
    producer = FakeProducer(fail={3})
    it, metrics = intake(producer)
    outcomes = run(it, [good(1), {"customer_id": "x"}, good(99), good(3), good(2)])
    assert [o.status for o in outcomes] == [
        "accepted",
        "invalid",
        "invalid",
        "unavailable",
        "accepted",
    ]
    assert outcomes[2].errors == [
        {"loc": ["customer_id"], "msg": "unknown customer id 99", "type": "unknown_customer"}
    ]
    assert [int(r.key) for r in producer.records] == [1, 2]
    assert metrics.outcome["accepted"]._value.get() == 2


def test_record_is_the_event_with_defaults_filled_and_keyed_by_customer() -> None:
    producer = FakeProducer()
    it, _ = intake(producer)
    (outcome,) = run(it, [good(2, order_id="0b7c6a80-0f2c-4f55-8f55-0a3f0e4c2d11")])
    (record,) = producer.records
    value = orjson.loads(record.value)
    assert record.topic == "orders"
    assert record.key == b"2"
    assert value == {
        "schema_version": 1,
        "order_id": "0b7c6a80-0f2c-4f55-8f55-0a3f0e4c2d11",
        "customer_id": 2,
        "created_at": "2026-06-01T09:30:00Z",
        "received_at": "2026-06-01T09:30:00Z",
        "items": [{"product_id": 10, "quantity": 1}],
    }
    assert str(outcome.order_id) == value["order_id"]


def test_unknown_products_are_located_per_item() -> None:
    it, _ = intake(FakeProducer())
    order = {
        "customer_id": 1,
        "items": [{"product_id": 10, "quantity": 1}, {"product_id": 77, "quantity": 2}],
    }
    (outcome,) = run(it, [order])
    assert outcome.status == "invalid"
    assert outcome.errors[0]["loc"] == ["items", 1, "product_id"]


def test_catalog_outage_is_not_mistaken_for_unknown_ids() -> None:
    it, _ = intake(FakeProducer(), broken=True)
    with pytest.raises(CatalogUnavailableError):
        run(it, [good(1)])
