"""The ingestion API over real HTTP, against real Kafka and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import psycopg
import pytest

from shopstream.config import Settings
from tests.integration.conftest import CUSTOMERS, read_back

pytestmark = pytest.mark.integration


def an_order(customer: int = 1, **kw: object) -> dict[str, object]:
    return {
        "customer_id": customer,
        "items": [{"product_id": 3, "quantity": 2}, {"product_id": 5, "quantity": 1}],
        **kw,
    }


def test_posted_order_is_in_kafka_identical(api: httpx.Client, stack: Settings) -> None:
    oid = str(uuid.uuid4())
    body = an_order(7, order_id=oid, created_at="2026-03-04T10:15:30.5+01:00")
    resp = api.post("/order", json=body)
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"status": "accepted", "order_id": oid}

    ((key, event),) = read_back(stack, {oid})[oid]
    assert key == b"7"
    received = datetime.fromisoformat(event.pop("received_at"))
    assert abs((stack.clock.now() - received).total_seconds()) < 60  # the API stamps by it
    assert event == {
        "schema_version": 1,
        "order_id": oid,
        "customer_id": 7,
        "created_at": "2026-03-04T09:15:30.500000Z",
        "items": body["items"],
    }


def test_order_without_id_or_time_gets_both(api: httpx.Client, stack: Settings) -> None:
    resp = api.post("/order", json=an_order(2))
    assert resp.status_code == 202
    oid = resp.json()["order_id"]
    ((_, event),) = read_back(stack, {oid})[oid]
    assert event["created_at"] == event["received_at"]


def test_batch_accepts_each_order_and_all_reach_kafka(api: httpx.Client, stack: Settings) -> None:
    orders = [an_order(c % CUSTOMERS + 1, order_id=str(uuid.uuid4())) for c in range(200)]
    resp = api.post("/orders", json={"orders": orders})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert (body["accepted"], body["rejected"]) == (200, 0)
    assert [r["order_id"] for r in body["results"]] == [o["order_id"] for o in orders]
    found = read_back(stack, {o["order_id"] for o in orders})  # type: ignore[misc]
    assert len(found) == 200


def test_batch_with_mixed_outcomes_is_207_with_per_order_results(api: httpx.Client) -> None:
    orders = [an_order(1), {"customer_id": 1, "items": []}, an_order(10**9)]
    resp = api.post("/orders", json={"orders": orders})
    assert resp.status_code == 207
    results = resp.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "invalid", "invalid"]
    assert results[1]["errors"][0]["loc"] == ["items"]
    assert results[2]["errors"][0]["type"] == "unknown_customer"


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        (b"not json", ["body"], "json_invalid"),
        (b'{"customer_id": 1, "items": []}', ["body", "items"], "too_short"),
        (
            b'{"customer_id": 1, "items": [{"product_id": 3, "quantity": 0}]}',
            ["body", "items", 0, "quantity"],
            "greater_than_equal",
        ),
        (
            b'{"customer_id": 1, "items": [{"product_id": 3, "quantity": 1}], "x": 1}',
            ["body", "x"],
            "extra_forbidden",
        ),
        (
            b'{"customer_id": 1, "created_at": "2026-01-01T00:00:00", '
            b'"items": [{"product_id": 3, "quantity": 1}]}',
            ["body", "created_at"],
            "timezone_aware",
        ),
        (
            b'{"customer_id": 999999, "items": [{"product_id": 3, "quantity": 1}]}',
            ["body", "customer_id"],
            "unknown_customer",
        ),
        (
            b'{"customer_id": 1, "items": [{"product_id": 99999, "quantity": 1}]}',
            ["body", "items", 0, "product_id"],
            "unknown_product",
        ),
    ],
)
def test_bad_orders_get_422_naming_the_field(
    api: httpx.Client, body: bytes, loc: list[object], kind: str
) -> None:
    resp = api.post("/order", content=body)
    assert resp.status_code == 422
    assert {"loc": loc, "type": kind} in [
        {"loc": e["loc"], "type": e["type"]} for e in resp.json()["detail"]
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than any parser should follow
        b"42",
        b'"an order"',
        b"null",
        b'{"customer_id": 1e400, "items": []}',
        '{"customer_id": 1, "items": [{"product_id": 3, "quantity": 1}], "\u0000é": 1}'.encode(),
        b'{"customer_id": 1, "items": [{"product_id": 3, "quantity": 1}]}' + b"\xff",
    ],
)
def test_hostile_bodies_are_refused_cleanly(api: httpx.Client, body: bytes) -> None:
    resp = api.post("/order", content=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"][0] == "body"
    assert api.get("/healthz").status_code == 200


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
def test_missing_or_wrong_key_is_401(stack: Settings, headers: dict[str, str]) -> None:
    resp = httpx.post(f"{stack.api_url}/order", json=an_order(), headers=headers)
    assert resp.status_code == 401
    assert "X-API-Key" in resp.json()["detail"]


def test_second_key_works_too(stack: Settings) -> None:
    resp = httpx.post(f"{stack.api_url}/order", json=an_order(), headers={"X-API-Key": "it-key-2"})
    assert resp.status_code == 202


def test_same_order_id_twice_is_accepted_twice_under_one_key(
    api: httpx.Client, stack: Settings
) -> None:
    oid = str(uuid.uuid4())
    for _ in range(2):
        resp = api.post("/order", json=an_order(11, order_id=oid))
        assert resp.status_code == 202
        assert resp.json()["order_id"] == oid
    records = read_back(stack, {oid})[oid]
    assert len(records) == 2  # downstream deduplicates on order_id
    assert {key for key, _ in records} == {b"11"}  # same key, same partition, same order


def test_customer_created_seconds_ago_is_accepted(api: httpx.Client, stack: Settings) -> None:
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        (new_id,) = conn.execute(
            "INSERT INTO customers (name, email, city, country, segment, signup_at) "
            "VALUES ('New Person', 'new@example.com', 'Oslo', 'NO', 'consumer', now()) RETURNING id"
        ).fetchone()  # type: ignore[misc]
    resp = api.post("/order", json=an_order(new_id))
    assert resp.status_code == 202, resp.text


def test_health_readiness_metrics_and_docs(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"ready": True, "kafka": "ok", "postgres": "ok"}
    api.post("/order", json=an_order())
    metrics = api.get("/metrics").text
    assert 'shopstream_orders_total{outcome="accepted"}' in metrics
    assert "shopstream_kafka_produce_seconds_bucket" in metrics
    assert 'shopstream_http_requests_total{handler="/order",method="POST",status="202"}' in metrics
    spec = api.get("/openapi.json").json()
    assert {"/order", "/orders", "/healthz", "/readyz"} <= set(spec["paths"])
    schema = spec["paths"]["/order"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"customer_id", "items"}
    assert api.get("/docs").status_code == 200
