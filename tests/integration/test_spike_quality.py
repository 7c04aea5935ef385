"""The default rule against the simulator's injected spikes, on a smaller deterministic dataset
(500 products, 60 days): precision and recall both at least 0.9 (the full measurement, on
1,000 products and two seeds: `shopstream bench spikes`)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from shopstream.config import Settings
from shopstream.spikes.quality import band, evaluate, score, simulate, truth_of
from shopstream.spikes.rule import Rule
from tests.utils import fresh_store

pytestmark = pytest.mark.integration

FIRST, DAYS = date(2026, 3, 2), 60


def test_the_default_rule_finds_the_injected_spikes_and_little_else(stack: Settings) -> None:
    utc = ZoneInfo("UTC")
    with fresh_store(stack, "spike_quality") as store:
        model = simulate(
            store, utc, products=500, orders_per_day=3_000, first=FIRST, days=DAYS,
            spikes=DAYS - 14, seed=42, surge=1.8,
        )  # fmt: skip
        judged = (FIRST + timedelta(days=14), FIRST + timedelta(days=DAYS - 1))
        # the literal rule (units above their own P95, nothing else) is what the guards are for
        literal = Rule(min_orders=0, margin=1.0, weekday=False, alpha=0, store_margin=0)
        found = evaluate(store, utc, *judged, {"default": Rule(), "literal": literal})
        events = store.spikes.store_events()  # the default's run, stored
    # the store-wide surge (x1.8 on a day without injected spikes) is one store event
    [surge_day] = model.surges
    assert list(events) == [surge_day.isoformat()]
    assert events[surge_day.isoformat()] == pytest.approx(1.8, abs=0.15)
    assert found["default"][surge_day] == set()
    truth = truth_of(model.spikes)
    assert sum(len(t) for t in truth.values()) == DAYS - 14
    expected = {int(p): model.expected_units(int(p), FIRST) for p in model.products}
    result = score("default", found["default"], truth, lambda p: band(expected[p]))
    assert result.days == DAYS - 14
    assert result.precision >= 0.9, result.as_dict()
    assert result.recall >= 0.9, result.as_dict()
    assert score("literal", found["literal"], truth, lambda p: band(expected[p])).precision < 0.2
