"""Kafka goes away: the API answers 503 quickly, never 202 for a record Kafka lacks."""

from __future__ import annotations

import time

import httpx
import pytest

from shopstream.config import Settings
from shopstream.stack import probes
from shopstream.stack.supervisor import Supervisor
from tests.integration.conftest import API_KEY, read_back
from tests.utils.clients import OrderClient

pytestmark = pytest.mark.integration


def test_broker_outage_gives_503_then_recovers_without_losing_acknowledged_orders(
    stack: Settings,
) -> None:
    sup = Supervisor(stack.data_path)
    client = OrderClient(stack.api_url, API_KEY)
    client.start()
    time.sleep(1)
    sup.stop_program("kafka")
    try:
        started = time.monotonic()
        resp = httpx.post(
            f"{stack.api_url}/order",
            headers={"X-API-Key": API_KEY},
            json={"customer_id": 4, "items": [{"product_id": 2, "quantity": 1}]},
            timeout=30,
        )
        elapsed = time.monotonic() - started
        assert resp.status_code == 503
        assert elapsed <= stack.produce_timeout_s  # 5 s by default
        assert resp.headers["Retry-After"]
        assert "retry" in resp.json()["detail"]
        time.sleep(2)
    finally:
        sup.start_program("kafka")
    probes.kafka(stack.kafka_servers)
    accepted_before_recovery = len(client.accepted)
    deadline = time.monotonic() + 60
    while len(client.accepted) < accepted_before_recovery + 20 and time.monotonic() < deadline:
        time.sleep(0.5)
    client.stop.set()
    client.join(timeout=60)

    assert client.unavailable > 0
    assert len(client.accepted) >= accepted_before_recovery + 20, "API did not recover"
    found = read_back(stack, set(client.accepted), timeout=60)
    missing = set(client.accepted) - set(found)
    assert not missing, f"{len(missing)} acknowledged orders are not in Kafka"
