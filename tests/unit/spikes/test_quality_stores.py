"""The three simulated stores of issue 21 (`spikes.stores.simulate_store`, `score_store`): the
generator's ground truth, the scoring on a hand-built store, and a smaller version of the
issue's "done when" for the default rule (pure; no servers; a few seconds)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from shopstream.spikes.rule import Rule
from shopstream.spikes.stores import (
    FIRST_JUDGED,
    STORES,
    SURGE_DAY,
    SimulatedStore,
    StoreScore,
    StoreSpec,
    score_store,
    score_with_labels,
    simulate_store,
)
from shopstream.store.records import History

SMALL, MID = (next(s for s in STORES if s.name == name) for name in ("small", "mid"))
TODAY = Rule(margin=1.6, min_orders=16, alpha=0, store_margin=0)  # issue 9's rule
STRICT = Rule(alpha=1e-6)  # a test too strict: sees little of what is there to see


@pytest.fixture(scope="module")
def small() -> SimulatedStore:
    return simulate_store(SMALL, seed=0)


@pytest.fixture(scope="module")
def mid() -> SimulatedStore:
    return simulate_store(MID, seed=0)


def test_the_history_and_the_days_are_what_the_detector_reads(small: SimulatedStore) -> None:
    h = small.history
    assert h.orders is not None
    assert h.start.weekday() == 0  # day 0 a Monday, so the surge day is a Wednesday
    assert small.day(SURGE_DAY).weekday() == 2
    assert h.units.shape == h.orders.shape == (250, 120)
    assert h.product_ids.tolist() == list(range(1, 251))
    assert h.loaded.all()
    assert h.orders_from == h.start
    assert h.store_events == {}
    np.testing.assert_array_equal(h.store_units, h.units.sum(axis=0))
    np.testing.assert_array_equal(h.store_hours.sum(axis=1), h.store_units)
    # every order has at least one unit; a day with units has orders
    assert (h.orders <= h.units).all()
    np.testing.assert_array_equal(h.orders > 0, h.units > 0)
    for i in range(250):
        sold = np.flatnonzero(h.units[i])
        if sold.size:
            assert h.first_sale[i + 1] == h.start + timedelta(days=int(sold[0]))
        else:
            assert i + 1 not in h.first_sale
    demand, sold = small.demand(40), h.units[:, 40] > 0  # only the products that sold
    assert demand.day == h.start + timedelta(days=40)
    assert [p["product_id"] for p in demand.products] == h.product_ids[sold].tolist()
    assert [p["units"] for p in demand.products] == h.units[sold, 40].tolist()
    assert [p["orders"] for p in demand.products] == h.orders[sold, 40].tolist()
    assert demand.units == h.store_units[40]
    assert sum(demand.hours) == h.store_units[40]


def test_the_same_seed_gives_the_same_store(small: SimulatedStore) -> None:
    again = simulate_store(SMALL, seed=0)
    assert again.spikes == small.spikes
    np.testing.assert_array_equal(again.history.units, small.history.units)
    assert simulate_store(SMALL, seed=1).spikes != small.spikes


@pytest.mark.parametrize("seed", [0, 1])
def test_spikes_are_injected_as_planned(seed: int) -> None:
    sim = simulate_store(SMALL, seed)
    bands = sim.bands
    per_band = SMALL.spikes_per_band(120)
    assert per_band == round(250 / 1000 * 92 / 3)  # 1 a day per 1,000 products, a third a band
    days = {i: [d for j, d in sim.spikes if j == i] for i, _ in sim.spikes}
    ordinary = [i for i, d in sim.spikes if d != SURGE_DAY]
    for b in (0, 1, 2):
        pool = int(np.sum(bands == b))
        # a product takes at most 3 spikes: the small store's 1-4 fast sellers cap theirs
        assert sum(bands[i] == b for i in ordinary) == min(per_band, 3 * pool)
    on_surge = [i for i, d in sim.spikes if d == SURGE_DAY]
    assert len(on_surge) == SMALL.surge_spikes
    assert all(bands[i] > 0 for i in on_surge)  # mid or fast sellers
    for (i, d), m in sim.spikes.items():
        assert 2 <= m <= 5
        assert FIRST_JUDGED <= d < 120
        assert d >= sim.launch[i] + 21
        assert bands[i] > 0 or sim.expected_units[i] >= 1  # slow spikes: 1-5 units a day
    for spiked in days.values():
        assert len(spiked) <= 3
        assert all(abs(a - b) >= 14 for a in spiked for b in spiked if a != b)


def test_orders_follow_the_model_mean_the_surge_and_the_spikes(mid: SimulatedStore) -> None:
    h, mean = mid.history, mid.true_orders_mean
    assert h.orders is not None
    rows = np.array([i for i, _ in mid.spikes])
    days = np.array([d for _, d in mid.spikes])
    multipliers = np.array(list(mid.spikes.values()))
    extra = ((multipliers - 1) * mean[rows, days]).sum()
    # 576,000 product-orders against their expectation (Poisson-gamma noise: well within 2 %)
    assert h.orders.sum() / (mean.sum() + extra) == pytest.approx(1.0, abs=0.02)
    # 185 spike days: their orders are the multiplier times the day's mean, on average
    assert h.orders[rows, days].sum() / (multipliers * mean[rows, days]).sum() == pytest.approx(
        1.0, abs=0.1
    )
    # the surge day: x1.8 on top of the store's day-to-day level (lognormal, sd 0.04)
    same_weekday = h.orders.sum(axis=0)[[SURGE_DAY - 14, SURGE_DAY - 7, SURGE_DAY + 7]].mean()
    assert 1.5 < h.orders.sum(axis=0)[SURGE_DAY] / same_weekday < 2.2
    # late launches ramp up: the store makes a little less than its nominal orders
    assert 0.85 < mid.orders_per_day / MID.orders_per_day < 1.0
    assert 0.15 < np.mean(mid.launch > 0) < 0.25


def _flat_store() -> SimulatedStore:
    """40 products of 10 units a day in single-unit orders (a 10-day pattern, P95 12), with:
    product 0 spiking to 60 on day 50 (injected), product 1 selling 60 on day 60 (not
    injected), product 2 doubling on day 70 (injected, but 20 is within its noise), and the
    whole store doubling on the surge day, where product 3 sells 5x (injected) and product 4
    3x (not injected)."""
    n, days = 40, 120
    pattern = np.array([8, 11, 9, 12, 10, 9, 11, 10, 8, 12])
    units = np.tile(np.resize(pattern, days), (n, 1))
    units[:, SURGE_DAY] = 20  # twice the usual day
    units[0, 50] = units[1, 60] = 60
    units[2, 70] = 20
    units[3, SURGE_DAY] = 100
    units[4, SURGE_DAY] = 60
    mean = np.full((n, days), 10.0)
    mean[:, SURGE_DAY] = 20.0
    start = simulate_store(SMALL, 0).history.start
    history = History(
        start=start,
        product_ids=np.arange(1, n + 1),
        units=units,
        loaded=np.ones(days, dtype=bool),
        store_units=units.sum(axis=0),
        store_hours=np.zeros((days, 24), dtype=np.int64),
        first_sale={i + 1: start for i in range(n)},
        orders=units.copy(),
        orders_from=start,
    )
    return SimulatedStore(
        spec=StoreSpec("flat", 400, n),
        seed=0,
        history=history,
        expected_units=np.full(n, 10.0),  # the mid band
        true_orders_mean=mean,
        k=np.full(n, 1e6),  # Poisson
        launch=np.zeros(n, dtype=np.int64),
        first_sale=np.zeros(n, dtype=np.int64),
        spikes={(0, 50): 6.0, (2, 70): 2.0, (3, SURGE_DAY): 5.0},
        prices_cents=np.full(n, 999),
    )


def test_scoring_counts_a_hand_built_store() -> None:
    s = score_store(_flat_store(), {"default": Rule()})["default"]
    assert (s.seeds, s.days) == (1, 120 - FIRST_JUDGED)
    # found: products 0 and 3 (injected), 1 and 4 (not); missed: product 2 (P(X >= 20) for a
    # Poisson of mean 10 is 0.0035: no test at 3e-5 sees it, nor the oracle at 1e-4)
    assert (s.tp, s.fp, s.fn) == ([0, 2, 0], [0, 2, 0], [0, 1, 0])
    assert s.precision == 0.5
    assert s.recall() == pytest.approx(2 / 3)
    assert s.false_alarms == pytest.approx(2 / 92 / 40 * 1000)
    assert (s.surge_events, s.false_events, s.surge_fp) == (1, 0, 1)
    assert [e["day"] for e in s.events] == [SURGE_DAY]
    assert s.events[0]["level"] == pytest.approx(2.0, abs=0.05)
    assert (s.detectable, s.detectable_tp) == (2, 2)
    both = s.add(s)
    assert (both.seeds, both.days, both.tp, both.surge_events) == (2, 184, [0, 4, 0], 2)
    assert both.precision == s.precision


@pytest.fixture(scope="module")
def scored(small: SimulatedStore, mid: SimulatedStore) -> dict[str, dict[str, StoreScore]]:
    """The default rule and two controls on the small store (seeds 0 and 1) and the mid store
    (seed 0): score per store, seeds summed."""
    rules = {"default": Rule(), "today": TODAY, "strict": STRICT}
    out: dict[str, dict[str, StoreScore]] = {}
    for sim in (small, simulate_store(SMALL, seed=1), mid):
        for name, s in score_store(sim, rules).items():
            by_rule = out.setdefault(sim.spec.name, {})
            by_rule[name] = by_rule[name].add(s) if name in by_rule else s
    return out


def _pooled_precision(scores: dict[str, dict[str, StoreScore]], rule: str) -> float:
    tp = sum(sum(by_rule[rule].tp) for by_rule in scores.values())
    fp = sum(sum(by_rule[rule].fp) for by_rule in scores.values())
    return tp / (tp + fp)


def _recall_of_detectable(scores: dict[str, dict[str, StoreScore]], rule: str) -> float:
    found = sum(by_rule[rule].detectable_tp for by_rule in scores.values())
    return found / sum(by_rule[rule].detectable for by_rule in scores.values())


def test_the_default_rule_meets_the_smaller_targets(
    scored: dict[str, dict[str, StoreScore]],
) -> None:
    """The issue's targets, where the research (docs/research/issue21-spike-guard.md, 5 seeds
    a store) measured the default rule at P 0.91-0.93, false alarms 0.033-0.036 a day per
    1,000 products, every surge day one store event and none on other days, and 75-85 % of the
    spikes an oracle can see (the issue's recall targets are out of reach for any rule: see
    there). Precision is pooled over the stores: the small store finds ~10 spikes a seed, so
    one false alarm moves its precision by 0.1. Measured here: P 0.915 (97 found, 9 false),
    false alarms 0.043 (small) / 0.038 (mid), surge-day product alarms 1, surge-day store
    levels 1.69-2.01 against at most 1.11 on other days, recall of detectable 0.82 (96/117).
    """
    assert _pooled_precision(scored, "default") >= 0.9
    for by_rule in scored.values():
        s = by_rule["default"]
        assert s.false_alarms <= 0.1, s.as_dict()
        assert s.surge_events == s.seeds  # every surge day a store event ...
        assert s.false_events == 0  # ... and no other day
        assert len(s.surge_levels) == s.seeds
        assert min(s.surge_levels) > 1.3
    surge_alarms = sum(by_rule["default"].surge_fp for by_rule in scored.values())
    assert surge_alarms <= 3  # over the 3 surge days, against ~11 for today's rule
    assert _recall_of_detectable(scored, "default") >= 0.7


def test_the_targets_fail_the_rules_they_should(scored: dict[str, dict[str, StoreScore]]) -> None:
    """The same thresholds are not met by issue 9's rule (P 0.74; 0.15 false alarms a day per
    1,000 products in the mid store, 0.109 in the small one; no store event; 11 product alarms
    on the surge days) nor by a test too strict to see the spikes (alpha 1e-6: recall of
    detectable 0.57, though P 0.97)."""
    assert _pooled_precision(scored, "today") < 0.9
    assert scored["mid"]["today"].false_alarms > 0.1
    assert sum(by_rule["today"].surge_events for by_rule in scored.values()) == 0
    assert sum(by_rule["today"].surge_fp for by_rule in scored.values()) > 3
    assert _recall_of_detectable(scored, "strict") < 0.7


def test_labels_are_given_to_the_first_half_and_scored_on_the_second() -> None:
    sim = _flat_store()
    before, after, given = score_with_labels(sim, Rule())
    # the first half (days 28-73): product 0's spike on day 50 (real: labelled expected) and
    # product 1's 60 on day 60 (not injected: labelled wrong)
    assert given == {"expected": 1, "wrong": 1}
    half = (FIRST_JUDGED + 120) // 2
    assert before.days == after.days == 120 - half
    # the second half is the surge day's two alarms either way: product 0, whose expected day
    # leaves its baseline, does not spike again
    assert (before.tp, before.fp) == (after.tp, after.fp) == ([0, 1, 0], [0, 1, 0])
    assert {(r, d) for r, d, _ in after.alarms if d >= half} == {(3, SURGE_DAY), (4, SURGE_DAY)}
