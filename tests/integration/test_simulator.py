"""Seeding and simulating against the real stack."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import psycopg
import pytest

from shopstream.cli.sim import SimOptions, run_simulation
from shopstream.config import Settings
from shopstream.messaging.tail import tail
from shopstream.simulator import seed
from tests.integration.conftest import API_KEY, CUSTOMERS, PRODUCTS, parse_event

pytestmark = pytest.mark.integration


def test_seed_is_rerunnable_and_extendable(stack: Settings) -> None:
    again = seed(stack.postgres_url, CUSTOMERS, PRODUCTS, seed_value=5)
    assert (again.customers_inserted, again.products_inserted) == (0, 0)
    with psycopg.connect(stack.postgres_url) as conn:
        before = conn.execute("SELECT name, price FROM products WHERE id = 7").fetchall()
    more = seed(stack.postgres_url, CUSTOMERS, PRODUCTS + 10, seed_value=5)
    assert more.products_inserted == 10
    with psycopg.connect(stack.postgres_url) as conn:
        assert conn.execute("SELECT name, price FROM products WHERE id = 7").fetchall() == before
        n_categories = conn.execute("SELECT count(DISTINCT category) FROM products").fetchone()
    assert n_categories is not None
    assert n_categories[0] >= 20


def test_backfill_goes_through_the_api_into_kafka_with_ground_truth(
    stack: Settings, tmp_path: Path
) -> None:
    truth = tmp_path / "truth.json"
    opts = SimOptions(
        backfill_days=2,
        orders_per_day=300,
        spikes=1,
        seed=9,
        signups_per_day=20,
        show_progress=False,
    )
    stats = asyncio.run(run_simulation(stack, opts, truth, API_KEY))
    assert stats.rejected == 0
    assert 400 < stats.accepted == stats.sent < 800

    facts = json.loads(truth.read_text())
    (spike,) = facts["spikes"]
    assert date.fromisoformat(spike["day"]).isoformat() in facts["days"]
    assert spike["injected_orders"] > 0
    assert facts["signups"] > 10

    with psycopg.connect(stack.postgres_url) as conn:
        row = conn.execute("SELECT count(*) FROM customers WHERE id > %s", (CUSTOMERS,)).fetchone()
    assert row is not None
    assert row[0] >= facts["signups"]

    # Every accepted order is in Kafka, dated within the backfilled days.
    days = set(facts["days"])
    in_kafka = [
        e
        for e in (
            parse_event(r.value)
            for r in tail(
                stack.kafka_servers, stack.orders_topic, from_beginning=True, idle_timeout=3.0
            )
        )
        if e.get("created_at", "")[:10] in days
    ]
    assert len(in_kafka) == stats.accepted
    assert len({e["order_id"] for e in in_kafka}) == stats.accepted
