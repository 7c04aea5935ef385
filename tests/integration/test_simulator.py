"""Seeding and simulating against the real stack, on the real date and at pinned ones.

What a run must send comes from the demand model's published profiles (`model_mean`), and
what reached Kafka is counted record by record: no bound here depends on the day it runs.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shopstream.cli.sim import SimOptions, run_simulation
from shopstream.config import Settings
from shopstream.domain.clock import Clock, day_bounds
from shopstream.domain.documents import batch_token
from shopstream.domain.windows import Span, spans
from shopstream.messaging.tail import tail
from shopstream.simulator import seed
from shopstream.simulator.runner import backfill_days
from shopstream.store.ferretdb import open_store
from shopstream.streaming.sink import BatchWrites, sink_config, write_partition
from shopstream.streaming.transform import KafkaRecord
from tests.integration.conftest import API_KEY, CUSTOMERS, PRODUCTS, parse_event
from tests.utils.dates import Instant, by_name, model_mean, poisson_close, settings_at

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


def records_since(stack: Settings, since: datetime) -> list[tuple[Any, dict[str, Any]]]:
    """(record, event) of every order the API accepted from `since` on (the suite's tests
    run one at a time, and the API stamps `received_at` by the stack's real clock)."""
    out = []
    for r in tail(stack.kafka_servers, stack.orders_topic, from_beginning=True, idle_timeout=3.0):
        event = parse_event(r.value)
        received = event.get("received_at")
        if received and datetime.fromisoformat(received) >= since:
            out.append((r, event))
    return out


def per_business_day(events: list[dict[str, Any]], clock: Clock) -> Counter[str]:
    return Counter(
        clock.day_of(datetime.fromisoformat(e["created_at"])).isoformat() for e in events
    )


@pytest.mark.parametrize(
    "instant",
    [
        None,  # the real date of the run
        *by_name(
            "monday",  # a Saturday and a Sunday
            "after-leap-day",  # 28 and 29 February
            "new-year-day-after",  # 31 December and 1 January
            "berlin-dst-end-after",  # a 25-hour day
            "sao-paulo-midnight-gap-after",  # a day that began at 01:00
        ),
    ],
    ids=str,
)
def test_backfill_goes_through_the_api_into_kafka_with_ground_truth(
    stack: Settings, tmp_path: Path, instant: Instant | None
) -> None:
    settings = stack if instant is None else settings_at(stack, instant)
    clock = settings.clock
    truth = tmp_path / "truth.json"
    opts = SimOptions(
        backfill_days=2, orders_per_day=300, spikes=1, seed=9, signups_per_day=20,
        show_progress=False,
    )  # fmt: skip
    since, today = stack.clock.now(), clock.today()
    stats = asyncio.run(run_simulation(settings, opts, truth, API_KEY))
    assert stats.rejected == 0
    assert stats.accepted == stats.sent > 0

    facts = json.loads(truth.read_text())
    # The two business days before the clock's today (or the next day's, had midnight passed).
    assert facts["days"] in (
        [d.isoformat() for d in backfill_days(today, 2)],
        [d.isoformat() for d in backfill_days(clock.today(), 2)],
    )
    assert facts["timezone"] == clock.zone.key
    (spike,) = facts["spikes"]
    assert spike["day"] in facts["days"]
    assert spike["injected_orders"] > 0
    spikes = [(date.fromisoformat(spike["day"]), spike["multiplier"],
               spike["expected_units_without_spike"])]  # fmt: skip
    per_day = {d["day"]: d for d in facts["per_day"]}
    assert list(per_day) == facts["days"]
    for day, row in per_day.items():
        mean = model_mean(*day_bounds(date.fromisoformat(day), clock.zone), clock.zone, 300, spikes)
        assert row["expected_orders"] == pytest.approx(mean, abs=0.05)
        assert poisson_close(row["generated_orders"], mean), (day, row, mean)
    assert sum(d["generated_orders"] for d in per_day.values()) == stats.sent

    with psycopg.connect(stack.postgres_url) as conn:
        row = conn.execute("SELECT count(*) FROM customers WHERE id > %s", (CUSTOMERS,)).fetchone()
    assert row is not None
    assert row[0] >= facts["signups"] > 0

    # Every accepted order is in Kafka once, on the business day the model drew it for.
    events = [e for _, e in records_since(stack, since)]
    assert len({e["order_id"] for e in events}) == len(events) == stats.accepted
    assert per_business_day(events, clock) == {
        day: row["generated_orders"] for day, row in per_day.items()
    }


@pytest.mark.parametrize(
    "instant",
    # 31 Dec 23:59:30 in Berlin becomes 1 Jan 30 s later; in Sao Paulo on 16 Feb 2019 the
    # clocks went back at midnight: 30 s later it was 23:00 on the 16th again.
    by_name("new-year-2359", "sao-paulo-dst-end-2359"),
    ids=str,
)
def test_a_live_run_from_23_59_30_counts_each_order_on_its_business_day_downstream(
    stack: Settings, tmp_path: Path, instant: Instant
) -> None:
    settings = settings_at(stack, instant, mongo_database=f"it_live_{uuid.uuid4().hex[:8]}")
    clock = settings.clock
    truth = tmp_path / "truth.json"
    opts = SimOptions(rate=8, duration=34, spikes=0, seed=11, signups_per_day=0,
                      show_progress=False)  # fmt: skip
    since = stack.clock.now()
    stats = asyncio.run(run_simulation(settings, opts, truth, API_KEY))
    assert stats.rejected == 0
    assert stats.accepted == stats.sent > 0
    facts = json.loads(truth.read_text())
    per_day = {d["day"]: d["generated_orders"] for d in facts["per_day"]}
    start_day = datetime.fromisoformat(instant.local).date()
    crosses = instant.name == "new-year-2359"
    assert list(per_day) == (
        [start_day.isoformat(), (start_day + timedelta(days=1)).isoformat()]
        if crosses
        else [start_day.isoformat()]
    )
    assert all(n > 0 for n in per_day.values())
    for row in facts["per_day"]:
        assert poisson_close(row["generated_orders"], row["expected_orders"]), row

    records = records_since(stack, since)
    events = [e for _, e in records]
    assert len({e["order_id"] for e in events}) == len(events) == stats.accepted
    assert per_business_day(events, clock) == per_day

    # Downstream: the stream's own partition writer and rollup writers (no Spark: the pinned
    # clock is not Spark's), then the dashboard's reader at the end of the run.
    store = open_store(settings, app="shopstream-test")
    try:
        store.rollups.ensure_layout(clock.zone)
        kafka = [
            KafkaRecord(r.key, r.value, settings.orders_topic, r.partition, r.offset,
                        datetime.fromtimestamp(r.timestamp_ms / 1000, UTC))
            for r, _ in records
        ]  # fmt: skip
        written = write_partition(kafka, sink_config(settings), "q-live", 0, False)
        assert written.new == len(events)
        driver = BatchWrites(store)
        driver.apply(batch_token("q-live", 0), written)
        driver.close()
        now = clock.now()
        reader = store.rollups.reader(clock.zone, closed_ttl_s=0)
        for day, count in per_day.items():
            bounds = clock.day_bounds(date.fromisoformat(day))
            assert reader.totals(Span(*bounds), now).orders == count
        current, _ = spans("today", now, clock.zone)
        assert current is not None
        in_window = [
            e
            for e in events
            if current.start <= datetime.fromisoformat(e["created_at"]) < current.end
        ]
        kpis = reader.kpis("today", now)
        assert kpis.current.orders == len(in_window)
        assert kpis.current.customers == len({e["customer_id"] for e in in_window})
    finally:
        store.drop()
        store.close()
