"""The demand model: skew, seasonality and spikes are measurable in what it generates."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from shopstream.domain import OrderIn
from shopstream.simulator.model import DemandModel, Spike, plan_spikes
from shopstream.simulator.runner import parse_surge

PRODUCTS = np.arange(1, 1001)  # rank order: product 1 is the best seller
CUSTOMERS = np.arange(1, 5001)
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def model(**kw: object) -> DemandModel:
    return DemandModel(PRODUCTS, CUSTOMERS, orders_per_day=kw.pop("per_day", 4000), seed=3, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def two_weeks() -> list[dict[str, object]]:
    return model().generate(MONDAY, MONDAY + timedelta(days=14))


def units_by_product(orders: list[dict[str, object]]) -> Counter[int]:
    units: Counter[int] = Counter()
    for o in orders:
        for item in o["items"]:  # type: ignore[attr-defined]
            units[item["product_id"]] += item["quantity"]
    return units


def test_orders_are_valid_api_payloads_in_time_order(two_weeks: list[dict[str, object]]) -> None:
    for o in two_weeks[:2000]:
        OrderIn.model_validate(o)
    times = [o["created_at"] for o in two_weeks]
    assert times == sorted(times)
    assert all(1 <= len(o["items"]) <= 5 for o in two_weeks)  # type: ignore[arg-type]
    assert len({o["order_id"] for o in two_weeks}) == len(two_weeks)


def test_volume_matches_the_configured_average(two_weeks: list[dict[str, object]]) -> None:
    per_day = len(two_weeks) / 14
    assert 3800 < per_day < 4200


def test_popularity_is_skewed(two_weeks: list[dict[str, object]]) -> None:
    units = units_by_product(two_weeks)
    total = sum(units.values())
    top_decile = sum(units[p] for p in range(1, 101))
    assert top_decile / total > 0.6  # Zipf: the top 10% of products sell most units
    assert units[1] > 20 * units[500]


def test_daily_seasonality(two_weeks: list[dict[str, object]]) -> None:
    by_hour = Counter(datetime.fromisoformat(o["created_at"]).hour for o in two_weeks)  # type: ignore[arg-type]
    assert by_hour[20] > 8 * by_hour[4]  # evening peak vs the small hours
    assert by_hour[12] > by_hour[8]


def test_weekly_seasonality(two_weeks: list[dict[str, object]]) -> None:
    by_weekday = Counter(datetime.fromisoformat(o["created_at"]).weekday() for o in two_weeks)  # type: ignore[arg-type]
    assert by_weekday[5] > 1.2 * by_weekday[1]  # Saturday vs Tuesday


def test_same_seed_same_orders() -> None:
    window = (MONDAY, MONDAY + timedelta(hours=6))
    assert model().generate(*window) == model().generate(*window)
    other = DemandModel(PRODUCTS, CUSTOMERS, 4000, seed=4).generate(*window)
    assert other != model().generate(*window)


def test_a_live_run_after_a_backfill_never_reuses_an_order_id() -> None:
    # Same seed, as `shopstream demo` uses for its backfill and its live traffic: the live
    # orders must be new orders, not resends of the backfill's (which the pipeline drops).
    backfill = model().generate(MONDAY, MONDAY + timedelta(days=1))
    live = model().generate(MONDAY + timedelta(days=3), MONDAY + timedelta(days=3, hours=2))
    assert live
    assert not {o["order_id"] for o in backfill} & {o["order_id"] for o in live}


def test_injected_spike_shows_in_the_data_and_the_ground_truth() -> None:
    day = date(2026, 3, 9)
    spike = Spike(product_id=40, day=day, multiplier=5.0)
    m = model(spikes=(spike,))
    orders = m.generate(MONDAY, MONDAY + timedelta(days=10))
    daily: Counter[date] = Counter()
    for o in orders:
        for item in o["items"]:  # type: ignore[attr-defined]
            if item["product_id"] == 40:
                daily[datetime.fromisoformat(o["created_at"]).date()] += item["quantity"]  # type: ignore[arg-type]
    usual = np.mean([daily[d] for d in daily if d != day])
    assert daily[day] > 3 * usual
    expected_extra = 4.0 * m.expected_units(40, day)
    assert m.injected[spike] == pytest.approx(expected_extra, rel=0.25)


def test_a_store_wide_surge_multiplies_every_hour_of_its_day() -> None:
    day = date(2026, 3, 4)  # a Wednesday
    m = model()
    m.surges = {day: 1.8}
    start = datetime(2026, 3, 4, tzinfo=UTC)
    plain = model().expected_orders(start, start + timedelta(days=1))
    assert m.expected_orders(start, start + timedelta(days=1)) == pytest.approx(1.8 * plain)
    assert m.expected_orders(start + timedelta(days=1), start + timedelta(days=2)) == (
        model().expected_orders(start + timedelta(days=1), start + timedelta(days=2))
    )
    drawn = len(m.generate(start, start + timedelta(days=1)))
    assert abs(drawn - 1.8 * plain) < 5 * (1.8 * plain) ** 0.5  # Poisson: within 5 sd
    assert parse_surge("2026-03-04:1.8") == (day, 1.8)
    for bad in ("2026-03-04", "2026-13-04:2", "2026-03-04:x", "2026-03-04:0"):
        with pytest.raises(ValueError, match="surge"):
            parse_surge(bad)


def test_spikes_are_planned_on_popular_products_and_given_days() -> None:
    days = [date(2026, 3, d) for d in range(10, 20)]
    spikes = plan_spikes(PRODUCTS, days, 5, seed=1)
    assert len(spikes) == 5
    assert len({s.product_id for s in spikes}) == 5
    assert all(s.product_id <= 200 and s.day in days and 3 <= s.multiplier <= 6 for s in spikes)
    assert plan_spikes(PRODUCTS, days, 5, seed=1) == spikes


def test_new_signups_start_ordering() -> None:
    m = model()
    m.add_customers([90_001, 90_002])
    orders = m.generate(MONDAY, MONDAY + timedelta(days=7))
    assert {o["customer_id"] for o in orders} >= {90_001, 90_002}


def test_calibrated_live_rate() -> None:
    m = model()
    at = MONDAY + timedelta(hours=20)
    m.calibrate(50.0, at)
    assert m.hourly_rate(at) == pytest.approx(50.0 * 3600)
