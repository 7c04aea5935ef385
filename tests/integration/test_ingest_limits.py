"""Payload and rate limits, on an in-process app wired to the session's real servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shopstream.config import Settings
from shopstream.ingestion import create_app
from tests.integration.conftest import API_KEY

pytestmark = pytest.mark.integration

ORDER = {"customer_id": 1, "items": [{"product_id": 3, "quantity": 1}]}


@pytest.fixture(scope="module")
def strict_client(stack: Settings) -> Iterator[TestClient]:
    settings = stack.model_copy(
        update={
            "max_order_bytes": 2048,
            "max_batch_bytes": 4096,
            "max_batch_orders": 20,
            "rate_limit": "30/minute",
        }
    )
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        yield client


def test_body_above_the_limit_is_413_even_without_content_length(strict_client: TestClient) -> None:
    big = {**ORDER, "items": [{"product_id": 3, "quantity": 1}] * 100}
    resp = strict_client.post("/order", json=big)
    assert resp.status_code == 413
    assert "2048 bytes" in resp.json()["detail"]

    def chunks() -> Iterator[bytes]:
        yield b'{"customer_id": 1, "items": ['
        for _ in range(300):
            yield b'{"product_id": 3, "quantity": 1},'

    assert strict_client.post("/order", content=chunks()).status_code == 413


def test_batch_limits(strict_client: TestClient) -> None:
    resp = strict_client.post("/orders", json={"orders": [ORDER] * 21})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["msg"] == "at most 20 orders per batch"
    assert strict_client.post("/orders", json={"orders": [ORDER] * 100}).status_code == 413
    assert strict_client.post("/orders", json={"orders": []}).status_code == 422
    assert strict_client.post("/orders", json=[ORDER]).status_code == 422


def test_rate_limit_is_per_key_and_counts_orders(strict_client: TestClient) -> None:
    codes = [strict_client.post("/order", json=ORDER).status_code for _ in range(10)]
    batch = strict_client.post("/orders", json={"orders": [ORDER] * 20})
    assert codes.count(202) == 10
    assert batch.status_code == 429
    assert int(batch.headers["Retry-After"]) >= 1
    other = strict_client.post("/order", json=ORDER, headers={"X-API-Key": "it-key-2"})
    assert other.status_code == 202
