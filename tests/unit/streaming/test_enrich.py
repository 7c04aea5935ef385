"""Parsing and enrichment on a handful of rows: one output per input, nothing dropped."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pyspark.sql import DataFrame, SparkSession

from shopstream.streaming.enrich import enrich, parse_events
from tests.unit.streaming.test_lake_rows import KAFKA_SCHEMA

TS = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
A = "0b7c6a80-0f2c-4f55-8f55-0a3f0e4c2d11"
B = "1c8d7b91-1a3d-4a66-9a66-1b4a1f5d3e22"
C = "2d9e8ca2-2b4e-4b77-ab77-2c5b2a6e4f33"


def event(order_id: str, customer: int = 1, items: object = None, **kw: object) -> bytes:
    body = {
        "schema_version": 1,
        "order_id": order_id,
        "customer_id": customer,
        "created_at": "2026-11-27T10:00:00Z",
        "received_at": "2026-11-27T10:00:01Z",
        "items": items if items is not None else [{"product_id": 10, "quantity": 2}],
        **kw,
    }
    return json.dumps(body).encode()


def kafka(spark: SparkSession, values: list[bytes]) -> DataFrame:
    rows = [(b"k", v, "orders", 0, i, TS) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


@pytest.fixture
def dims(spark: SparkSession) -> tuple[DataFrame, DataFrame]:
    customers = spark.createDataFrame(
        [
            (1, "Ada Lovelace", "consumer", "London", "GB"),
            (2, "Alan Turing", "corporate", "Manchester", "GB"),
        ],
        "id long, name string, segment string, city string, country string",
    )
    products = spark.createDataFrame(
        [
            (10, "Kettle", "Home & Kitchen", Decimal("39.99")),
            (11, "Novel", "Books", Decimal("15.49")),
        ],
        "id long, name string, category string, price decimal(12,2)",
    )
    return customers, products


def test_parse_separates_valid_events_from_typed_dead_letters(spark: SparkSession) -> None:
    values = [
        event(A),
        b"{not json",
        event(B, items=[{"product_id": 10, "quantity": 0}]),
        event("not-a-uuid", schema_version=2),
        event(C, items=[]),
    ]
    events, dead = parse_events(kafka(spark, values))
    assert [r["order_id"] for r in events.collect()] == [A]
    got = {r["offset"]: (r["reason"], r["detail"]) for r in dead.collect()}
    assert got == {
        1: ("malformed_json", "value is not JSON"),
        2: ("schema_violation", "invalid: items"),
        3: ("schema_violation", "invalid: schema_version, order_id"),
        4: ("schema_violation", "invalid: items"),
    }
    assert events.count() + dead.count() == len(values)


def test_resends_of_an_order_collapse_to_the_first_record(spark: SparkSession) -> None:
    events, dead = parse_events(kafka(spark, [event(A), event(B), event(A, customer=2)]))
    rows = {r["order_id"]: r for r in events.collect()}
    assert set(rows) == {A, B}
    assert (rows[A]["offset"], rows[A]["customer_id"]) == (0, 1)
    assert dead.count() == 0


def test_enrichment_prices_lines_and_totals(
    spark: SparkSession, dims: tuple[DataFrame, DataFrame]
) -> None:
    items = [{"product_id": 11, "quantity": 3}, {"product_id": 10, "quantity": 1}]
    events, _ = parse_events(kafka(spark, [event(A, customer=2, items=items)]))
    orders, dead = enrich(events, *dims)
    assert dead.count() == 0
    (order,) = orders.collect()
    assert order["order_id"] == A
    assert order["created_at"] == datetime(2026, 11, 27, 10, 0)
    assert order["customer"].asDict() == {
        "id": 2,
        "name": "Alan Turing",
        "segment": "corporate",
        "city": "Manchester",
        "country": "GB",
    }
    assert [i.asDict() for i in order["items"]] == [  # in the order the client sent them
        {
            "product_id": 11,
            "name": "Novel",
            "category": "Books",
            "unit_price": Decimal("15.49"),
            "quantity": 3,
            "line_total": Decimal("46.47"),
        },
        {
            "product_id": 10,
            "name": "Kettle",
            "category": "Home & Kitchen",
            "unit_price": Decimal("39.99"),
            "quantity": 1,
            "line_total": Decimal("39.99"),
        },
    ]
    assert (order["item_count"], order["units"]) == (2, 4)
    assert order["order_total"] == Decimal("86.46")
    assert order["kafka"]["offset"] == 0


def test_unknown_ids_become_dead_letters_not_silent_drops(
    spark: SparkSession, dims: tuple[DataFrame, DataFrame]
) -> None:
    values = [
        event(A, customer=99),
        event(
            B,
            items=[
                {"product_id": 10, "quantity": 1},
                {"product_id": 77, "quantity": 1},
                {"product_id": 78, "quantity": 1},
            ],
        ),
        event(C),
    ]
    events, _ = parse_events(kafka(spark, values))
    orders, dead = enrich(events, *dims)
    assert [r["order_id"] for r in orders.collect()] == [C]
    got = {r["offset"]: (r["reason"], r["detail"]) for r in dead.collect()}
    assert got == {
        0: ("unknown_customer", "customer 99"),
        1: ("unknown_product", "products 77, 78"),
    }
    assert bytes(dead.where("offset = 0").first()["value"]) == values[0]  # raw payload kept
