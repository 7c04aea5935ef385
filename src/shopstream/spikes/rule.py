"""The spike rule, for many products at once (pure; numpy arrays in, arrays out).

Day D is a spike for a product when its units on D exceed `margin` times the 95th percentile
of that product's own earlier daily units, where the history is:

- the `lookback_days` days before D (D itself excluded);
- zero-filled: a day without sales counts as 0 units, but only from the product's first sale
  on (the days before a product was ever sold say nothing about its demand);
- optionally weekday-adjusted: each history day's units are scaled by how the store as a whole
  sells on D's weekday against that day's weekday (`weekday_factors`), so a Saturday is
  compared with Saturday-like levels and a Monday with Monday-like ones;

and the product has at least `min_history_days` such days, at least `min_units` units and at
least `min_orders` orders on D (the P95 of a mostly-zero history is 0, and "1 unit > 0" is not
a spike; one customer's bulk order of 10 is not a demand spike either: a slow seller's daily
units are dominated by order sizes, which made most false alarms in the measurements).

The percentile is linear interpolation between order statistics, numpy's default method.
The intraday rule (`shopstream.spikes.intraday`) applies the same rule to cumulative units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Rule", "Verdicts", "evaluate", "history_matrix", "percentiles", "weekday_factors"]


@dataclass(frozen=True)
class Rule:
    """The rule's parameters (defaults measured against the simulator's injected spikes:
    docs/spikes.md)."""

    lookback_days: int = 90
    min_history_days: int = 14
    min_units: int = 5
    min_orders: int = 16  # orders with the product on D
    margin: float = 1.6  # units must exceed margin x P95
    weekday: bool = True  # weekday-adjusted baseline
    percentile: float = 95.0

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
class Verdicts:
    """The rule's outcome per product (arrays aligned with the input rows)."""

    p95: np.ndarray  # the (adjusted) history's percentile; NaN without history
    history_days: np.ndarray  # days counted in the history
    ratio: np.ndarray  # units / p95 (inf when p95 is 0 and units > 0)
    spike: np.ndarray  # bool


def evaluate(
    units: np.ndarray,
    history: np.ndarray,
    rule: Rule,
    *,
    history_weekdays: np.ndarray | None = None,
    weekday: int | None = None,
    factors: np.ndarray | None = None,
    orders: np.ndarray | None = None,
) -> Verdicts:
    """Applies the rule: `units` (per product) on day D against `history` (products x days,
    NaN where a day does not count; see `history_matrix`). With `rule.weekday`, pass the
    weekday of each history day, D's weekday and the store's `weekday_factors`; with
    `rule.min_orders`, the products' `orders` on D."""
    units = np.asarray(units, dtype=np.float64)
    history = np.asarray(history, dtype=np.float64)
    if rule.weekday and history.shape[1]:
        if history_weekdays is None or weekday is None or factors is None:
            raise ValueError("a weekday-aware rule needs the history's weekdays and factors")
        scale = factors[weekday] / factors[np.asarray(history_weekdays)]
        history = history * scale[None, :]
    p95, counts = percentiles(history, rule.percentile)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(p95 > 0, units / p95, np.where(units > 0, np.inf, 0.0))
    spike = (
        (counts >= rule.min_history_days)
        & (units >= rule.min_units)
        & (units > rule.margin * np.nan_to_num(p95, nan=np.inf))
    )
    if rule.min_orders:
        if orders is None:
            raise ValueError("a rule with min_orders needs the products' orders on the day")
        spike &= np.asarray(orders) >= rule.min_orders
    return Verdicts(p95=p95, history_days=counts, ratio=ratio, spike=spike)
