"""Every part that decides a date, at each hard instant (tests/utils/dates.py).

Expected values come from brute force (scanning minutes for their local date) or from the
demand model's own formula, never from numbers fitted on the day the suite ran.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shopstream.config import Settings
from shopstream.domain.clock import Clock, day_bounds
from shopstream.domain.rollups import DAY, HOUR, order_deltas
from shopstream.domain.windows import cover, day_span, spans
from shopstream.simulator.model import DemandModel, Spike
from shopstream.simulator.runner import backfill_days
from shopstream.stack.airflow import first_day
from tests.utils.dates import HARD, Instant, brute_day_bounds, model_mean, poisson_close

pytestmark = pytest.mark.parametrize("instant", HARD, ids=str)


def test_the_clock_says_which_day_it_is_and_where_the_day_starts_and_ends(
    instant: Instant,
) -> None:
    clock = Clock.fixed(instant.at, instant.zone)
    assert clock.now() == instant.at
    assert clock.local_now().replace(tzinfo=None) == datetime.fromisoformat(instant.local)
    today = datetime.fromisoformat(instant.local).date()
    assert clock.today() == today
    assert clock.yesterday() == today - timedelta(days=1)
    for day in (clock.yesterday(), today, today + timedelta(days=1)):
        assert clock.day_bounds(day) == brute_day_bounds(day, instant.tz)
    start, end = clock.day_bounds(today)
    assert start <= clock.now() < end


def test_a_frozen_or_shifted_clock_comes_from_the_settings(instant: Instant) -> None:
    frozen = Settings(business_timezone=instant.zone, clock_frozen_at=instant.at).clock
    assert (frozen.now(), frozen.zone) == (instant.at, instant.tz)
    offset = (instant.at - datetime.now(UTC)).total_seconds()
    shifted = Settings(business_timezone=instant.zone, clock_offset_s=offset).clock
    assert abs((shifted.now() - instant.at).total_seconds()) < 5
    with pytest.raises(ValueError, match="not both"):
        Settings(clock_frozen_at=instant.at, clock_offset_s=1.0)


def test_the_default_days_of_every_component_follow_the_clock(instant: Instant) -> None:
    settings = Settings(business_timezone=instant.zone, clock_frozen_at=instant.at)
    local_today = datetime.fromisoformat(instant.local).date()
    utc_today = instant.at.date()
    # The daily DAGs' first days: spikes count business days, the warehouse UTC lake days.
    assert first_day(None, settings) == local_today - timedelta(days=30)
    assert first_day(None, settings, "UTC") == utc_today - timedelta(days=30)
    # `shopstream spikes run` judges the business yesterday; `warehouse` the UTC yesterday.
    assert settings.clock.yesterday() == local_today - timedelta(days=1)
    from shopstream.cli.warehouse import _the_day

    assert _the_day(None, settings) == utc_today - timedelta(days=1)
    # A backfill sends the days before today, oldest first, without gaps.
    days = backfill_days(settings.clock.today(), 3)
    assert days == [local_today - timedelta(days=d) for d in (3, 2, 1)]


def test_dashboard_windows_start_at_the_business_midnight_and_are_covered_exactly(
    instant: Instant,
) -> None:
    tz, now = instant.tz, instant.at
    current, previous = spans("today", now, tz)
    assert current is not None
    assert previous is not None
    minute = now.replace(second=0, microsecond=0)
    today = now.astimezone(tz).date()
    assert (current.start, current.end) == (brute_day_bounds(today, tz)[0], minute)
    assert previous.start == brute_day_bounds(today - timedelta(days=1), tz)[0]
    assert day_span(today, tz).start == current.start
    for window in ("15m", "1h", "today", "7d", "30d"):
        for span in spans(window, now, tz):
            assert span is not None
            buckets = cover(span, tz)
            if not span.length:  # "today" in the first minute of the day: nothing yet
                assert (window, buckets) == ("today", [])
                continue
            assert buckets[0].start == span.start
            assert buckets[-1].end == span.end
            for left, right in itertools.pairwise(buckets):
                assert left.end == right.start


def brute_expected_orders(model: DemandModel, start: datetime, end: datetime) -> float:
    spikes = [
        (s.day, s.multiplier, model.expected_units(s.product_id, s.day)) for s in model.spikes
    ]
    return model_mean(start, end, model.tz, model.orders_per_day, spikes)


def test_the_simulator_sends_what_its_model_expects_on_every_day(instant: Instant) -> None:
    tz = instant.tz
    clock = Clock.fixed(instant.at, tz)
    days = [*backfill_days(clock.today(), 2), clock.today()]
    products = np.arange(1, 41, dtype=np.int64)
    model = DemandModel(products, np.arange(1, 501, dtype=np.int64), 2400, seed=3, timezone=tz.key)
    model.spikes = (Spike(1, days[1], 4.0),)
    by_day: Counter[str] = Counter()
    for day in days:
        start, end = day_bounds(day, tz)
        mean = model.expected_orders(start, end)
        assert mean == pytest.approx(brute_expected_orders(model, start, end), rel=1e-9)
        hours = (end - start) / timedelta(hours=1)
        assert hours in (23, 24, 25)
        orders = model.generate(start, end)
        assert model.generated[day] == len(orders)
        assert model.expected[day] == pytest.approx(mean, rel=1e-9)
        assert poisson_close(len(orders), mean)
        for o in orders:
            at = datetime.fromisoformat(o["created_at"])
            assert start <= at < end
            by_day[at.astimezone(tz).date().isoformat()] += 1
    assert by_day == {d.isoformat(): model.generated[d] for d in days}


def test_rollups_put_each_order_in_its_business_day_and_utc_hour(instant: Instant) -> None:
    tz = instant.tz
    today = instant.at.astimezone(tz).date()
    start, _ = day_bounds(today - timedelta(days=1), tz)
    _, end = day_bounds(today, tz)
    step = (end - start) / 997
    item = {"product_id": 1, "name": "p", "category": "c", "quantity": 1, "line_total": 1.0}
    orders = [
        {"created_at": (start + i * step).replace(microsecond=0), "items": [item]}
        for i in range(997)
    ]
    deltas = order_deltas(orders, tz)
    days = Counter(o["created_at"].astimezone(tz).date().isoformat() for o in orders)
    hours = Counter(o["created_at"].strftime("%Y-%m-%dT%HZ") for o in orders)
    assert {k: d.counts["orders"] for (level, k), d in deltas.items() if level == DAY} == days
    assert {k: d.counts["orders"] for (level, k), d in deltas.items() if level == HOUR} == hours
