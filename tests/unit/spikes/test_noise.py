"""The noise test on orders and store events: the hand-built cases of
docs/research/issue21-spike-guard.md (exact p-values), the winsor cap, the store level, and
`alpha = 0` being issue 9's rule bit for bit (pure; no servers)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from shopstream.spikes.detector import detect, window
from shopstream.spikes.rule import Rule, evaluate, noise, store_level
from shopstream.store.records import DayDemand, History

FLAT = Rule(weekday=False)  # the defaults, on a store without a weekly shape

# (history pattern of 10 days repeated 9 times, orders pattern or None = same as units,
#  units on D, orders on D, P95, p-value (None: not tested, a floor failed), spike)
FOUR = [1, 3, 4, 6, 2, 5, 4, 7, 3, 5]  # a 4/day seller (mean 4.0)
NOISY = [0, 3, 4, 7, 2, 5, 4, 8, 3, 4]  # a noisier one (mean 4.0)
THIRTY = [22, 38, 27, 35, 24, 33, 28, 36, 25, 32]  # a 30/day seller
ONE = [0, 1, 0, 2, 1, 0, 1, 3, 1, 1]  # a 1/day seller's units ...
ONE_ORDERS = [0, 1, 0, 1, 1, 0, 1, 2, 1, 1]  # ... and orders
CASES = {
    "4/day seller sells 16": (FOUR, None, 16, 16, 7.0, 4.925783e-6, True),
    "... in 11 orders": (FOUR, None, 16, 11, 7.0, 2.846120e-3, False),
    "a noisier 4/day seller": (NOISY, None, 16, 16, 8.0, 7.291028e-5, False),
    "30/day seller sells 45": (THIRTY, None, 45, 45, 38.0, None, False),
    "30/day seller sells 80": (THIRTY, None, 80, 80, 38.0, 3.458227e-14, True),
    "1/day seller, one bulk order of 10": (ONE, ONE_ORDERS, 10, 1, 3.0, None, False),
    "... 10 units from 6 orders": (ONE, ONE_ORDERS, 10, 6, 3.0, 1.845487e-4, False),
    "... 10 units from 7 orders": (ONE, ONE_ORDERS, 10, 7, 3.0, 2.078088e-5, True),
}


def _case(pattern: list[int], orders: list[int] | None, u: int, o: int, level: float = 1.0):  # type: ignore[no-untyped-def]
    history = np.array([pattern * 9], dtype=float)
    orders_history = np.array([(orders or pattern) * 9], dtype=float)
    return evaluate(
        np.array([float(u)]), history, FLAT,
        orders=np.array([o]), orders_history=orders_history, level=level,
    )  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_the_hand_built_cases(name: str) -> None:
    pattern, orders, u, o, p95, p, spike = CASES[name]
    v = _case(pattern, orders, u, o)
    assert v.p95[0] == p95
    assert v.threshold[0] == pytest.approx(1.3 * p95)
    if p is None:
        assert np.isnan(v.p_value[0])  # a floor or the P95 condition failed: not tested
    else:
        assert v.p_value[0] == pytest.approx(p, rel=1e-6)
    assert bool(v.spike[0]) is spike


def test_the_noise_model_of_the_hand_built_cases() -> None:
    v = _case(FOUR, None, 16, 16)
    assert v.expected_orders[0] == pytest.approx(4.0)
    assert v.shape[0] == 1e4  # variance 3.03 x (1 + 1/90) < mean: as Poisson
    noisy = _case(NOISY, None, 16, 16)
    assert noisy.shape[0] == pytest.approx(17.62376, rel=1e-6)  # 16 / (4.853933 - 4)


def test_on_a_store_event_day_the_baseline_scales_with_the_store() -> None:
    # the 4/day seller's 16 on a day the whole store sells x1.8: threshold 9.1 x 1.8 = 16.38
    v = _case(FOUR, None, 16, 16, level=1.8)
    assert v.threshold[0] == pytest.approx(16.38)
    assert not v.spike[0]
    assert v.expected_orders[0] == pytest.approx(7.2)


def test_an_earlier_spike_in_the_history_does_not_pass_for_noise() -> None:
    pattern = [10, 12, 9, 11, 10, 8, 12, 11, 9, 10] * 9
    spiked = list(pattern)
    spiked[40] = 60  # a spike six weeks ago
    rows = np.array([pattern, spiked], dtype=float)
    capped = noise(rows, FLAT)
    uncapped = noise(rows, Rule(weekday=False, winsor=0))
    # capped at 1.6 x P95 (12): 19.2; with the cap the history stays as Poisson, without it
    # the one day makes the product look over-dispersed (r 6.2)
    assert capped.mean[1] == pytest.approx((sum(pattern) - 10 + 19.2) / 90)
    assert capped.shape.tolist() == [1e4, 1e4]
    assert uncapped.shape[1] == pytest.approx(6.18663, rel=1e-5)
    # so the next spike (30 orders against ~10) is found with the cap, hidden without it
    args = {"orders": np.array([30, 30]), "orders_history": rows}
    assert evaluate(np.full(2, 30.0), rows, FLAT, **args).spike.tolist() == [True, True]
    no_cap = Rule(weekday=False, winsor=0)
    assert evaluate(np.full(2, 30.0), rows, no_cap, **args).spike.tolist() == [True, False]


def test_without_the_test_and_store_events_the_rule_is_issue_9s() -> None:
    rng = np.random.default_rng(11)
    n, days = 400, 60
    history = rng.poisson(rng.uniform(0, 20, (n, 1)), (n, days)).astype(float)
    history[rng.random((n, days)) < 0.1] = np.nan
    units = rng.poisson(rng.uniform(0, 40, n)).astype(float)
    orders = rng.integers(0, 30, n)
    rule = Rule(lookback_days=days, weekday=False, margin=1.6, min_orders=16, alpha=0,
                store_margin=0)  # fmt: skip
    got = evaluate(units, history, rule, orders=orders)
    brute = []
    for i in range(n):
        row = history[i][~np.isnan(history[i])]
        p95 = np.percentile(row, 95) if row.size else np.inf
        brute.append(bool(row.size >= 14 and units[i] >= 5 and orders[i] >= 16
                          and units[i] > 1.6 * p95))  # fmt: skip
    assert got.spike.tolist() == brute
    assert 0 < sum(brute) < n  # the data exercises both outcomes
    assert np.isnan(got.p_value).all()


def test_the_store_level_is_robust_to_one_product() -> None:
    rng = np.random.default_rng(3)
    means = rng.uniform(1, 50, 200)
    units = rng.poisson(means).astype(float)
    base, used = store_level(units, means, FLAT)
    assert base == pytest.approx(1.0, abs=0.03)
    assert used == 160  # the 10 % highest and lowest ratios left out
    units[np.argmax(means)] *= 10  # the best seller's own spike
    assert store_level(units, means, FLAT)[0] == pytest.approx(base, abs=0.01)
    surge = rng.poisson(means * 1.8).astype(float)
    assert store_level(surge, means, FLAT)[0] == pytest.approx(1.8, abs=0.05)
    assert store_level(units[:9], means[:9], FLAT) == (1.0, 9)  # too few products to say
    slow = np.full(50, 0.5)  # products under 1 unit a day do not count
    assert store_level(np.full(50, 5.0), slow, FLAT) == (1.0, 0)


def test_rule_parameters_of_the_test_are_checked() -> None:
    for bad, match in (({"alpha": 1.0}, "alpha"), ({"alpha": -1e-3}, "alpha"),
                       ({"winsor": 0.5}, "winsor"), ({"store_margin": 0.9}, "store_margin"),
                       ({"test_days": 1}, "test_days")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            Rule(**bad)  # type: ignore[arg-type]
    assert Rule(lookback_days=30).test_window == 30
    with pytest.raises(ValueError, match="orders"):
        evaluate(np.array([10.0]), np.ones((1, 20)), FLAT, orders=np.array([5]))


# ------------------------------------------------------------------ the detector's day


START = date(2026, 1, 5)  # a Monday


def _store(days: int, products: int, seed: int, surge: dict[int, float]) -> History:
    """A store of Poisson sellers (single-unit orders) with store-wide surges on some days."""
    rng = np.random.default_rng(seed)
    rates = rng.uniform(2, 40, products)
    factor = np.array([surge.get(d, 1.0) for d in range(days)])
    units = rng.poisson(rates[:, None] * factor[None, :]).astype(np.int64)
    return History(
        start=START,
        product_ids=np.arange(1, products + 1),
        units=units,
        loaded=np.ones(days, dtype=bool),
        store_units=units.sum(axis=0),
        store_hours=np.zeros((days, 24), dtype=np.int64),
        first_sale={p: START for p in range(1, products + 1)},
        orders=units.copy(),
        orders_from=START,
    )


def _demand(h: History, day: date) -> DayDemand:
    c = h.column(day)
    return DayDemand(day, [
        {"product_id": int(p), "units": int(h.units[i, c]), "orders": int(h.orders[i, c])}  # type: ignore[index]
        for i, p in enumerate(h.product_ids) if h.units[i, c]
    ])  # fmt: skip


def test_a_store_wide_surge_is_one_store_event_not_a_spike_per_product() -> None:
    rule = Rule(lookback_days=30, weekday=False)
    h = _store(40, 300, seed=5, surge={35: 1.8})
    day = START + timedelta(days=35)
    found = detect(h, _demand(h, day), rule)
    assert found.store["event"] is True
    assert found.store["level"] == pytest.approx(1.8, abs=0.05)
    assert found.spikes == []
    literal = detect(h, _demand(h, day), Rule(lookback_days=30, weekday=False, store_margin=0))
    assert len(literal.spikes) > 20  # without store events the surge is many product spikes
    ordinary = detect(h, _demand(h, day - timedelta(days=1)), rule)
    assert ordinary.store["event"] is False
    assert ordinary.store["level"] == pytest.approx(1.0, abs=0.05)


def test_a_store_event_day_is_left_out_of_later_histories() -> None:
    rule = Rule(lookback_days=30, weekday=False)
    h = _store(40, 50, seed=6, surge={35: 1.8})
    event = START + timedelta(days=35)
    later = START + timedelta(days=38)
    assert np.isfinite(window(h, later, rule).history[:, 35 - 8]).all()
    h.store_events[event] = 1.8
    w = window(h, later, rule)
    assert np.isnan(w.history[:, 35 - 8]).all()  # the lookback starts on day 8
    assert np.isnan(w.orders_history[:, 35 - 8]).all()
    assert np.isfinite(w.history[:, 34 - 8]).all()


def test_orders_before_what_was_read_do_not_count() -> None:
    rule = Rule(lookback_days=30, weekday=False, test_days=10)
    h = _store(40, 5, seed=7, surge={})
    h.orders_from = START + timedelta(days=29)
    w = window(h, START + timedelta(days=39), rule)
    assert np.isnan(w.orders_history[:, :20]).all()
    assert np.isfinite(w.orders_history[:, 20:]).all()


def test_a_spike_document_says_why() -> None:
    rule = Rule(lookback_days=30, weekday=False)
    h = _store(40, 50, seed=8, surge={})
    c = 39
    h.units[0, c] = h.orders[0, c] = int(h.units[0, :c].max() * 3)  # type: ignore[index]
    found = detect(h, _demand(h, START + timedelta(days=c)), rule)
    spike = next(s for s in found.spikes if s["product_id"] == 1)
    assert spike["orders"] == spike["units"]
    assert spike["p_value"] < rule.alpha
    assert spike["orders_needed"] <= spike["orders"]
    assert spike["store_level"] == 1.0
    assert spike["threshold"] == pytest.approx(1.3 * spike["p95"], abs=1e-3)
