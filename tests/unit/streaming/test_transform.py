"""The per-partition transform on plain records: one outcome per record, nothing dropped."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shopstream.streaming.transform import Customer, KafkaRecord, Product, parse, transform

TS = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC)
A = "0b7c6a80-0f2c-4f55-8f55-0a3f0e4c2d11"
B = "1c8d7b91-1a3d-4a66-9a66-1b4a1f5d3e22"
C = "2d9e8ca2-2b4e-4b77-ab77-2c5b2a6e4f33"


def event(order_id: str, customer: int = 1, items: object = None, **kw: object) -> bytes:
    body = {
        "schema_version": 1,
        "order_id": order_id,
        "customer_id": customer,
        "created_at": "2026-11-27T23:59:30+01:00",
        "received_at": "2026-11-27T23:59:31Z",
        "items": items if items is not None else [{"product_id": 10, "quantity": 2}],
        **kw,
    }
    return json.dumps(body).encode()


def records(*values: bytes | None, partition: int = 0) -> list[KafkaRecord]:
    return [KafkaRecord(b"1", v, "orders", partition, i, TS) for i, v in enumerate(values)]


class Dims:
    """An in-memory `Lookup` that also records what was asked (one call per table)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, set[int]]] = []

    def customers(self, ids: set[int]) -> Mapping[int, Customer]:
        self.asked.append(("customers", ids))
        known = {
            1: Customer(1, "Ada Lovelace", "consumer", "London", "GB"),
            2: Customer(2, "Alan Turing", "corporate", "Manchester", "GB"),
        }
        return {i: known[i] for i in ids if i in known}

    def products(self, ids: set[int]) -> Mapping[int, Product]:
        self.asked.append(("products", ids))
        known = {
            10: Product(10, "Kettle", "Home & Kitchen", Decimal("39.99")),
            11: Product(11, "Novel", "Books", Decimal("15.49")),
            12: Product(12, "Pencil", "Office", Decimal("0.10")),
        }
        return {i: known[i] for i in ids if i in known}


def run(recs: list[KafkaRecord], dims: Dims | None = None) -> Any:
    return transform(recs, dims or Dims(), NOW, "query-1", 7)


def test_a_valid_order_becomes_one_enriched_document_with_exact_money() -> None:
    items = [{"product_id": 11, "quantity": 3}, {"product_id": 12, "quantity": 7}]
    out = run(records(event(A, customer=2, items=items)))
    assert (out.dead, out.duplicates) == ([], 0)
    (doc,) = out.orders
    assert doc["_id"] == doc["order_id"] == A
    assert doc["created_at"] == datetime(2026, 11, 27, 22, 59, 30, tzinfo=UTC)  # to UTC
    assert doc["day"] == "2026-11-27"  # the UTC day, like the lake's dt
    # when the API received it (its clock, which decides whether an order is late history)
    assert doc["received_at"] == datetime(2026, 11, 27, 23, 59, 31, tzinfo=UTC)
    assert doc["customer"] == {
        "id": 2,
        "name": "Alan Turing",
        "segment": "corporate",
        "city": "Manchester",
        "country": "GB",
    }
    assert doc["items"] == [
        {"product_id": 11, "name": "Novel", "category": "Books", "unit_price": 15.49,
         "quantity": 3, "line_total": 46.47},
        {"product_id": 12, "name": "Pencil", "category": "Office", "unit_price": 0.1,
         "quantity": 7, "line_total": 0.7},
    ]  # fmt: skip
    assert (doc["item_count"], doc["units"], doc["order_total"]) == (2, 10, 47.17)
    assert doc["ingest"] == {
        "topic": "orders",
        "partition": 0,
        "offset": 0,
        "kafka_timestamp": TS,
        "processed_at": NOW,
        "query_id": "query-1",
        "batch_id": 7,
    }


def test_every_bad_record_becomes_one_typed_dead_letter_naming_what_is_wrong() -> None:
    values = [
        b"{oops",
        None,
        event(A, items=[{"product_id": 10, "quantity": 0}]),
        event(B, customer="7"),  # a string where a number belongs
        event("not-a-uuid"),
        event(C, extra=1),
        json.dumps([1, 2]).encode(),
    ]
    out = run(records(*values))
    assert out.orders == []
    reasons = [(d["reason"], d["detail"]) for d in out.dead]
    assert reasons[0] == ("malformed_json", "value is not JSON")
    assert reasons[1] == ("malformed_json", "value is empty")
    assert [r for r, _ in reasons[2:]] == ["schema_violation"] * 5
    assert "items.0.quantity" in reasons[2][1]
    assert "customer_id" in reasons[3][1]
    assert "order_id" in reasons[4][1]
    assert "extra" in reasons[5][1]
    dead = out.dead[2]
    assert dead["_id"] == "orders:0:2"
    assert dead["payload"] == values[2].decode()  # type: ignore[union-attr]
    assert dead["kafka"] == {"topic": "orders", "partition": 0, "offset": 2, "kafka_timestamp": TS}
    assert dead["failed_at"] == NOW


def test_unknown_customers_and_products_are_dead_letters_not_dropped() -> None:
    out = run(
        records(
            event(A, customer=99),
            event(B, items=[{"product_id": 10, "quantity": 1}, {"product_id": 77, "quantity": 1},
                            {"product_id": 76, "quantity": 1}]),
            event(C),
        )
    )  # fmt: skip
    assert [o["_id"] for o in out.orders] == [C]
    assert [(d["_id"], d["reason"], d["detail"]) for d in out.dead] == [
        ("orders:0:0", "unknown_customer", "customer 99"),
        ("orders:0:1", "unknown_product", "products 76, 77"),
    ]


def test_resends_within_the_input_collapse_to_the_first_record() -> None:
    first = event(A, items=[{"product_id": 10, "quantity": 1}])
    resend = event(A, items=[{"product_id": 11, "quantity": 9}])
    # Out of order on purpose: the lowest (partition, offset) is the order.
    recs = [
        KafkaRecord(b"1", resend, "orders", 0, 9, TS),
        KafkaRecord(b"1", first, "orders", 0, 4, TS),
        KafkaRecord(b"1", event(B), "orders", 0, 5, TS),
    ]
    out = run(recs)
    assert [(o["_id"], o["ingest"]["offset"]) for o in out.orders] == [(A, 4), (B, 5)]
    assert out.orders[0]["items"][0]["quantity"] == 1
    assert (out.duplicates, out.dead) == (1, [])


def test_dimensions_are_asked_once_per_table_for_the_ids_the_input_needs() -> None:
    dims = Dims()
    run(records(event(A), event(B, customer=2, items=[{"product_id": 11, "quantity": 1}])), dims)
    assert dims.asked == [("customers", {1, 2}), ("products", {10, 11})]


def test_parse_accepts_exactly_what_the_api_writes() -> None:
    parsed = parse(event(A))
    assert not isinstance(parsed, tuple)
    assert str(parsed.order_id) == A
    assert parse(event(A, schema_version=2))[0] == "schema_violation"  # type: ignore[index]
