"""The spike rule: numpy-equal percentiles, zero-fill, exclusion of D, the guards, the
weekday-aware baseline, the noise test on orders (the hand-built cases of
docs/research/issue21-spike-guard.md, exact), store events (pure; no servers)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from shopstream.spikes.detector import window
from shopstream.spikes.rule import Rule, evaluate, history_matrix, percentiles, weekday_factors
from shopstream.store.records import History

PLAIN = Rule(
    lookback_days=30, min_history_days=5, min_units=5, min_orders=0, margin=1.0, weekday=False,
    alpha=0, store_margin=0,
)  # fmt: skip


def _padded(rows: list[np.ndarray], width: int) -> np.ndarray:
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


@pytest.mark.parametrize("q", [95.0, 50.0, 5.0, 99.9, 0.5])
def test_percentiles_equal_numpy_on_random_rows_of_every_length(q: float) -> None:
    rng = np.random.default_rng(7)
    rows = [rng.poisson(rng.uniform(0, 30), size=n).astype(float) for n in range(1, 120)]
    rows += [rng.normal(100, 40, size=n) for n in (1, 2, 3, 17, 365)]
    got, counts = percentiles(_padded(rows, 365), q)
    want = np.array([np.percentile(r, q) for r in rows])
    assert counts.tolist() == [len(r) for r in rows]
    np.testing.assert_array_equal(got, want)  # bit-equal, not just close


def test_percentiles_with_ties_and_short_histories() -> None:
    rows = [np.array([3.0] * 20), np.array([0.0] * 19 + [10.0]), np.array([4.0]),
            np.array([1.0, 9.0]), np.array([5.0, 5.0, 5.0, 8.0])]  # fmt: skip
    got, _ = percentiles(_padded(rows, 20), 95)
    assert got.tolist() == [np.percentile(r, 95) for r in rows]
    assert got[0] == 3.0
    assert got[2] == 4.0
    assert got[1] == pytest.approx(0.5)  # rank 18.05: between the last 0 and the 10


def test_a_row_without_history_has_no_percentile() -> None:
    got, counts = percentiles(np.full((2, 4), np.nan), 95)
    assert np.isnan(got).all()
    assert counts.tolist() == [0, 0]


def test_history_is_zero_filled_from_the_first_sale_only() -> None:
    units = np.array([[0, 0, 3, 0, 0, 2], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    hist = history_matrix(units, np.array([2, 0, 6]))
    assert np.isnan(hist[0, :2]).all()
    assert hist[0, 2:].tolist() == [3, 0, 0, 2]
    assert hist[1].tolist() == [1, 0, 0, 0, 0, 0]  # zeros after the first sale count
    assert np.isnan(hist[2]).all()  # never sold: no history at all


def test_a_spike_needs_units_above_margin_times_p95() -> None:
    history = np.tile(np.arange(10, 30, dtype=float), (4, 1))  # p95 = 28.05
    units = np.array([28.0, 28.1, 42.0, 42.2])
    plain = evaluate(units, history, PLAIN)
    assert plain.spike.tolist() == [False, True, True, True]
    margin = evaluate(units, history, Rule(**{**PLAIN.as_document(), "margin": 1.5}))
    assert margin.spike.tolist() == [False, False, False, True]  # 1.5 x 28.05 = 42.075
    assert plain.ratio[2] == pytest.approx(42 / 28.05)


def test_units_equal_to_a_tied_p95_are_not_a_spike() -> None:
    verdict = evaluate(np.array([7.0, 8.0]), np.full((2, 20), 7.0), PLAIN)
    assert verdict.p95.tolist() == [7.0, 7.0]
    assert verdict.spike.tolist() == [False, True]


def test_minimum_units_guards_a_mostly_zero_history() -> None:
    history = np.zeros((3, 30))
    history[:, 3] = 1  # p95 of 29 zeros and a one is 0
    verdict = evaluate(np.array([1.0, 4.0, 5.0]), history, PLAIN)
    assert verdict.p95.tolist() == [0.0, 0.0, 0.0]
    assert verdict.spike.tolist() == [False, False, True]
    assert np.isinf(verdict.ratio).all()


def test_minimum_history_days() -> None:
    history = np.full((2, 30), np.nan)
    history[0, -4:] = 1  # 4 days since the first sale
    history[1, -5:] = 1  # 5 days
    verdict = evaluate(np.array([50.0, 50.0]), history, PLAIN)
    assert verdict.history_days.tolist() == [4, 5]
    assert verdict.spike.tolist() == [False, True]


def test_weekday_factors_from_the_store_totals() -> None:
    weekdays = np.arange(28) % 7
    store = np.where(weekdays == 5, 200.0, 100.0)
    factors = weekday_factors(store, weekdays)
    mean = store.mean()
    assert factors[5] == pytest.approx(200 / mean)
    assert factors[0] == pytest.approx(100 / mean)
    assert weekday_factors(np.array([]), np.array([])).tolist() == [1.0] * 7


def test_the_weekday_baseline_compares_a_saturday_with_saturday_levels() -> None:
    # A product selling 10 on weekdays and 20 on Saturdays, like the whole store.
    days = 56
    weekdays = (np.arange(days) + 0) % 7  # day 0 is a Monday
    product = np.where(weekdays == 5, 20.0, 10.0)
    store = product * 100
    factors = weekday_factors(store, weekdays)
    history = product[None, :]
    rule = Rule(
        lookback_days=days, min_history_days=14, min_units=5, min_orders=0, margin=1.2,
        weekday=True, alpha=0,
    )  # fmt: skip
    flat = Rule(**{**rule.as_document(), "weekday": False})
    kw = {"history_weekdays": weekdays, "factors": factors}
    # 19 on a Monday is a spike against Monday's 10 but not against the raw P95 (20)
    assert evaluate(np.array([19.0]), history, rule, weekday=0, **kw).spike.tolist() == [True]
    assert evaluate(np.array([19.0]), history, flat).spike.tolist() == [False]
    # 22 on a Saturday is an ordinary Saturday, though above the raw weekday level
    assert evaluate(np.array([22.0]), history, rule, weekday=5, **kw).spike.tolist() == [False]


def test_minimum_orders_guards_a_single_bulk_order() -> None:
    history = np.full((2, 30), 2.0)  # a slow seller: 2 units a day
    rule = Rule(**{**PLAIN.as_document(), "min_orders": 3})
    # 10 units on the day: once in one order of 10, once in five orders
    verdict = evaluate(np.array([10.0, 10.0]), history, rule, orders=np.array([1, 5]))
    assert verdict.spike.tolist() == [False, True]
    with pytest.raises(ValueError, match="orders"):
        evaluate(np.array([10.0]), history[:1], rule)


def test_rule_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="margin"):
        Rule(margin=0.5)
    with pytest.raises(ValueError, match="min_history_days"):
        Rule(lookback_days=10, min_history_days=11)


def _history(start: date, units: list[list[int]], firsts: dict[int, date]) -> History:
    arr = np.array(units, dtype=np.int64)
    n = arr.shape[1]
    return History(
        start=start,
        product_ids=np.arange(1, arr.shape[0] + 1),
        units=arr,
        loaded=np.ones(n, dtype=bool),
        store_units=arr.sum(axis=0),
        store_hours=np.zeros((n, 24), dtype=np.int64),
        first_sale=firsts,
    )


def test_the_window_excludes_day_d_and_starts_at_the_first_sale() -> None:
    start = date(2026, 1, 5)  # a Monday
    rule = Rule(
        lookback_days=6, min_history_days=2, min_units=1, min_orders=0, margin=1.0,
        weekday=False, alpha=0,
    )  # fmt: skip
    h = _history(
        start,
        [[5, 0, 0, 2, 0, 0, 99], [0, 0, 0, 1, 0, 3, 7]],
        {1: start - timedelta(days=30), 2: start + timedelta(days=3)},
    )
    w = window(h, start + timedelta(days=6), rule)
    assert w.units.tolist() == [99, 7]  # D's units, not in the history
    assert w.history[0].tolist() == [5, 0, 0, 2, 0, 0]  # sold before the window: all 6 days
    assert np.isnan(w.history[1, :3]).all()
    assert w.history[1, 3:].tolist() == [1, 0, 3]
    h.loaded[1] = False  # a day never loaded does not count (as opposed to 0 units)
    assert np.isnan(window(h, start + timedelta(days=6), rule).history[0, 1])


def test_the_intraday_baseline_follows_the_stores_level_today() -> None:
    from shopstream.spikes.detector import Window
    from shopstream.spikes.intraday import elapsed_share, store_level

    hours = np.zeros((2, 24))
    hours[:, 6:18] = 10  # a store selling 120 units between 06:00 and 18:00
    share = elapsed_share(hours, 12.0)
    assert share.tolist() == [0.5, 0.5]
    assert np.isnan(elapsed_share(np.zeros((1, 24)), 12.0)).all()
    w = Window(np.zeros(1), np.zeros((1, 2)), np.array([0, 1]), 2, np.ones(7), date(2026, 1, 5),
               np.zeros(1), np.zeros((1, 2)))  # fmt: skip
    flat = Rule(weekday=False, min_orders=0)
    by_now = np.array([120.0, 120.0]) * share  # 60 units by noon on a usual day
    assert store_level(180.0, by_now, w, flat) == pytest.approx(3.0)  # three times as busy
    assert store_level(0.0, by_now, w, flat) == 1.0
    assert store_level(50.0, np.array([np.nan, 0.0]), w, flat) == 1.0  # no usable history
