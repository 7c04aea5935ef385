"""The spike rule, for many products at once (pure; numpy arrays in, arrays out).

Day D is a spike for a product when both hold (docs/spikes.md, "The rule"):

1. **Above its own high days**: its units on D exceed `margin` times the 95th percentile of
   that product's own earlier daily units, where the history is
   - the `lookback_days` days before D (D itself excluded);
   - zero-filled: a day without sales counts as 0 units, but only from the product's first
     sale on (the days before a product was ever sold say nothing about its demand);
   - optionally weekday-adjusted: each history day is scaled by how the store as a whole sells
     on D's weekday against that day's weekday (`weekday_factors`);
   - scaled by the store's level on a store-event day (`store_level`: the whole store sold
     more than `store_margin` times its usual; each product is then judged against that).
2. **More than its own noise** (`alpha` > 0): the number of orders with the product on D is
   unlikely under a negative binomial fitted to the product's own daily orders over the last
   `test_days` of the history (method of moments; each history day capped at `winsor` times
   the orders' P95 for the moments, so an earlier spike does not pass for everyday noise; the
   variance widened by 1 + 1/n for the estimated mean): P(X >= orders) < `alpha`. Orders, not
   units: one customer's bulk order is one buyer, not demand (a 1/day seller's bulk order of
   10 units is 1 order, p = 0.55: not a spike).

and the product has at least `min_history_days` history days, `min_units` units and
`min_orders` orders on D (sanity floors: 1-2 buyers are never a demand spike).

`alpha = 0` turns the test off and `store_margin = 0` the store events: with both, margin 1.6
and min_orders 16 the rule is issue 9's exactly. The percentile is linear interpolation between
order statistics, numpy's default. The intraday rule (`shopstream.spikes.intraday`) applies the
same rule to cumulative counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from shopstream.spikes.nb import nb_sf, nb_shape

__all__ = [
    "Noise",
    "Rule",
    "Verdicts",
    "evaluate",
    "history_matrix",
    "noise",
    "percentiles",
    "store_level",
    "usual_units",
    "weekday_factors",
    "weekday_scale",
]


@dataclass(frozen=True)
class Rule:
    """The rule's parameters (defaults measured on three simulated stores of 300 to 30,000
    orders a day: docs/research/issue21-spike-guard.md, docs/spikes.md)."""

    lookback_days: int = 90
    min_history_days: int = 14
    min_units: int = 5
    min_orders: int = 3  # orders with the product on D (a floor; the test does the work)
    margin: float = 1.3  # units must exceed margin x P95 (x the store level on an event day)
    weekday: bool = True  # weekday-adjusted baseline
    percentile: float = 95.0
    alpha: float = 3e-5  # the noise test's significance (0: no test)
    winsor: float = 1.6  # history days capped at winsor x P95 for the moments (0: no cap)
    test_days: int = 90  # the noise test's history: the last test_days of the lookback
    store_margin: float = 1.3  # a store event above this store level (0: no store events)
    store_products: int = 10  # products with >= 1 unit a day needed to measure the level

    def __post_init__(self) -> None:
        if self.lookback_days < 1:
            raise ValueError("lookback_days must be at least 1")
        if self.min_history_days < 1 or self.min_history_days > self.lookback_days:
            raise ValueError("min_history_days must be between 1 and lookback_days")
        if self.min_units < 0 or self.min_orders < 0:
            raise ValueError("min_units and min_orders must not be negative")
        if self.margin < 1:
            raise ValueError("margin must be at least 1 (units > margin x P95)")
        if not 0 < self.percentile < 100:
            raise ValueError("percentile must be between 0 and 100")
        if not 0 <= self.alpha < 1:
            raise ValueError("alpha must be at least 0 (no test) and below 1")
        if self.winsor and self.winsor < 1:
            raise ValueError("winsor must be 0 (no cap) or at least 1")
        if self.test_days < 2:
            raise ValueError("test_days must be at least 2")
        if self.store_margin and self.store_margin < 1:
            raise ValueError("store_margin must be 0 (no store events) or at least 1")
        if self.store_products < 1:
            raise ValueError("store_products must be at least 1")

    @property
    def test_window(self) -> int:
        """How many of the latest history days the noise test reads."""
        return min(self.test_days, self.lookback_days)

    def as_document(self) -> dict[str, Any]:
        return asdict(self)


def percentiles(history: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Each row's q-th percentile over its non-NaN values, and how many values it has.

    Linear interpolation (numpy's default): with the row's n values sorted, the percentile
    sits at rank (n - 1) * q / 100 between the two nearest values. A row without values
    gives NaN.
    """
    rows = np.sort(np.asarray(history, dtype=np.float64), axis=1)  # NaN sorts last
    counts = np.sum(~np.isnan(rows), axis=1)
    rank = (np.maximum(counts, 1) - 1) * (q / 100.0)
    lo = np.floor(rank).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(counts - 1, 0))
    if rows.shape[1] == 0:
        return np.full(rows.shape[0], np.nan), counts
    low = np.take_along_axis(rows, lo[:, None], axis=1)[:, 0]
    high = np.take_along_axis(rows, hi[:, None], axis=1)[:, 0]
    # numpy's own formula (lerp from the side nearer the fraction) for bit-equal results
    frac = rank - lo
    value = np.where(frac >= 0.5, high - (high - low) * (1 - frac), low + (high - low) * frac)
    return np.where(counts > 0, value, np.nan), counts


def history_matrix(units: np.ndarray, first_sale: np.ndarray) -> np.ndarray:
    """The rule's history from daily units (products x days, oldest first, zeros where no
    sales): NaN before each product's first sale, as a column index (`first_sale[i]` = len
    means the product has no sale in the window or before it)."""
    units = np.asarray(units, dtype=np.float64)
    days = np.arange(units.shape[1])
    return np.where(days[None, :] >= np.asarray(first_sale)[:, None], units, np.nan)


def weekday_factors(store_units: np.ndarray, weekdays: np.ndarray) -> np.ndarray:
    """How the store sells on each weekday (0 = Monday) relative to its average day, from its
    daily units over the history window (1.0 for a weekday without data)."""
    store_units = np.asarray(store_units, dtype=np.float64)
    weekdays = np.asarray(weekdays)
    factors = np.ones(7)
    if store_units.size == 0 or store_units.mean() <= 0:
        return factors
    overall = store_units.mean()
    for day in range(7):
        values = store_units[weekdays == day]
        if values.size and values.mean() > 0:
            factors[day] = values.mean() / overall
    return factors


@dataclass
class Noise:
    """Each product's daily orders as the noise test sees them (weekday-adjusted, capped)."""

    mean: np.ndarray  # mean orders a day (NaN without history)
    shape: np.ndarray  # the negative binomial's shape r (variance m + m^2 / r)
    days: np.ndarray  # history days counted


def _moments(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's mean, variance (ddof 1) and count over its non-NaN values."""
    ok = ~np.isnan(rows)
    n = ok.sum(axis=1)
    values = np.where(ok, rows, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = values.sum(axis=1) / n
        var = np.where(ok, (rows - mean[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1)
    return mean, var, n


def noise(orders_history: np.ndarray, rule: Rule, share: np.ndarray | None = None) -> Noise:
    """The noise model of each row of `orders_history` (products x days, already
    weekday-adjusted; NaN where a day does not count): method-of-moments negative binomial
    over the last `rule.test_window` days, each day capped at `winsor` x the row's P95 (at
    least 1), the variance widened by 1 + 1/n (the mean is an estimate too). With `share`
    (per history day), the mean is of the days' orders x share (the intraday rule's orders
    by now; thinning a negative binomial keeps its shape, so the shape is the daily one)."""
    orders_history = np.asarray(orders_history, dtype=np.float64)
    if orders_history.shape[1] == 0:
        empty = np.full(orders_history.shape[0], np.nan)
        return Noise(mean=empty, shape=nb_shape(empty, empty), days=np.zeros(len(empty), int))
    rows = orders_history[:, -rule.test_window :]
    if rule.winsor:
        p95, _ = percentiles(rows, rule.percentile)
        cap = rule.winsor * np.maximum(np.nan_to_num(p95, nan=1.0), 1.0)
        rows = np.minimum(rows, cap[:, None])
    mean, var, n = _moments(rows)
    with np.errstate(invalid="ignore"):
        var = var * (1 + 1 / np.maximum(n, 1))
    shape = nb_shape(mean, var)
    if share is not None:
        mean, _, _ = _moments(rows * np.asarray(share, dtype=np.float64)[-rule.test_window :])
    return Noise(mean=mean, shape=shape, days=n)


def store_level(units: np.ndarray, means: np.ndarray, rule: Rule) -> tuple[float, int]:
    """The store's level on day D against its usual day, robust to any one product: the sum of
    D's units over the sum of their usual (weekday-adjusted mean) units, over the products
    selling at least 1 unit a day on average, leaving out the 10 % highest and lowest ratios.
    Returns (level, products used); (1.0, n) when fewer than `store_products` qualify."""
    units = np.asarray(units, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    ok = np.isfinite(means) & (means >= 1)
    used = int(ok.sum())
    if used < rule.store_products:
        return 1.0, used
    u, m = units[ok], means[ok]
    ratio = u / m
    low, high = np.percentile(ratio, [10, 90])
    middle = (ratio >= low) & (ratio <= high)
    return float(u[middle].sum() / m[middle].sum()), int(middle.sum())


def weekday_scale(
    rule: Rule,
    days: int,
    history_weekdays: np.ndarray | None,
    weekday: int | None,
    factors: np.ndarray | None,
) -> np.ndarray:
    """What each history day is multiplied by to look like D's weekday (ones without
    `rule.weekday`)."""
    if not rule.weekday or not days:
        return np.ones(days)
    if history_weekdays is None or weekday is None or factors is None:
        raise ValueError("a weekday-aware rule needs the history's weekdays and factors")
    return np.asarray(factors[weekday] / factors[np.asarray(history_weekdays)], dtype=np.float64)


def usual_units(history: np.ndarray, rule: Rule) -> np.ndarray:
    """Each product's mean daily units over its (weekday-adjusted) history, NaN with fewer
    than `min_history_days` days: what `store_level` compares a day with."""
    mean, _, n = _moments(np.asarray(history, dtype=np.float64))
    return np.where(n >= rule.min_history_days, mean, np.nan)


@dataclass
class Verdicts:
    """The rule's outcome per product (arrays aligned with the input rows)."""

    p95: np.ndarray  # the (adjusted) history's percentile; NaN without history
    history_days: np.ndarray  # days counted in the history
    ratio: np.ndarray  # units / p95 (inf when p95 is 0 and units > 0)
    spike: np.ndarray  # bool
    threshold: np.ndarray  # margin x p95 x level: what units had to exceed
    p_value: np.ndarray  # P(orders >= D's) under the product's noise (NaN: not tested)
    expected_orders: np.ndarray  # the noise model's mean x level (NaN without the test)
    shape: np.ndarray  # the noise model's shape r (NaN without the test)


def evaluate(
    units: np.ndarray,
    history: np.ndarray,
    rule: Rule,
    *,
    history_weekdays: np.ndarray | None = None,
    weekday: int | None = None,
    factors: np.ndarray | None = None,
    orders: np.ndarray | None = None,
    orders_history: np.ndarray | None = None,
    level: float = 1.0,
    orders_share: np.ndarray | None = None,
) -> Verdicts:
    """Applies the rule: `units` (per product) on day D against `history` (products x days,
    NaN where a day does not count; see `history_matrix`). With `rule.weekday`, pass the
    weekday of each history day, D's weekday and the store's `weekday_factors`; with
    `rule.min_orders` or `rule.alpha`, the products' `orders` on D; with `rule.alpha`, their
    daily `orders_history` (aligned with `history`; only its last `test_window` days are
    read). `level` is D's store level on a store-event day (1 otherwise): it scales both the
    threshold and the expected orders. `orders_share` (per history day) scales the expected
    orders only, for the intraday rule (a day's orders so far: the daily count thinned, same
    shape)."""
    units = np.asarray(units, dtype=np.float64)
    history = np.asarray(history, dtype=np.float64)
    scale = weekday_scale(rule, history.shape[1], history_weekdays, weekday, factors)
    history = history * scale[None, :]
    p95, counts = percentiles(history, rule.percentile)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(p95 > 0, units / p95, np.where(units > 0, np.inf, 0.0))
    threshold = rule.margin * np.nan_to_num(p95, nan=np.inf) * level
    spike = (counts >= rule.min_history_days) & (units >= rule.min_units) & (units > threshold)
    if rule.min_orders or rule.alpha:
        if orders is None:
            raise ValueError("a rule with min_orders or alpha needs the products' orders on D")
        orders = np.asarray(orders, dtype=np.float64)
        spike &= orders >= rule.min_orders
    nan = np.full(units.shape, np.nan)
    p_value, expected, shape = nan.copy(), nan.copy(), nan.copy()
    if rule.alpha:
        if orders_history is None:
            raise ValueError("a rule with alpha needs the products' daily orders history")
        assert orders is not None
        adjusted = np.asarray(orders_history, dtype=np.float64) * scale[None, :]
        model = noise(adjusted, rule, orders_share)
        expected = model.mean * level
        shape = model.shape
        tested = np.flatnonzero(spike)
        if tested.size:
            p_value[tested] = nb_sf(orders[tested], expected[tested], shape[tested])
            spike[tested] &= p_value[tested] < rule.alpha
    return Verdicts(
        p95=p95,
        history_days=counts,
        ratio=ratio,
        spike=spike,
        threshold=threshold,
        p_value=p_value,
        expected_orders=expected,
        shape=shape,
    )
