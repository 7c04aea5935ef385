#!/usr/bin/env python
"""Prototype for issue 21: a per-product noise guard for the daily spike rule, store-wide
events, and the rule's quality on three synthetic stores.

Standalone: numpy only (the project has no scipy), no shopstream imports, no database.
Findings: docs/research/issue21-spike-guard.md.

    nice -n 19 python bench/prototypes/spike_guard.py                 # quality, 5 seeds
    nice -n 19 python bench/prototypes/spike_guard.py --cases         # the hand-built cases
    nice -n 19 python bench/prototypes/spike_guard.py --timing        # 10,000 x 365 days
    nice -n 19 python bench/prototypes/spike_guard.py --selftest      # NB tail vs exact sums

What it does:

1. `simulate` generates a store's daily units AND daily orders (orders containing the
   product) per product for `DAYS` days, with ground truth (see `simulate`'s docstring).
2. `RULES` are the candidate rules, all vectorised over products: today's rule
   (`shopstream.spikes.rule`, reimplemented), the P95 x margin rule plus a one-sided
   negative-binomial tail test on units or on orders, and variants (store-level adjustment,
   a recent mean, a quasi-Poisson normal bound, a "units AND orders" test).
3. `score` gives precision, recall (overall and by band), false alarms per day per 1,000
   products, and what happened on the store-wide surge day.
4. `timing` runs the recommended rule for one day on 10,000 products x 365 days.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- the generator

DAYS = 120  # day 0 is a Monday
FIRST_JUDGED = 28  # spikes are injected from here on (and >= 21 days after a late launch)
WEEKLY = np.array([0.90, 0.88, 0.92, 0.95, 1.05, 1.20, 1.10])  # Mon..Sun: a weekend bump
WEEKLY = WEEKLY / WEEKLY.mean()
QTY_VALUES = np.array([1, 2, 3, 4, 5])
QTY_P = np.array([0.70, 0.18, 0.07, 0.03, 0.02])  # units of the product in one order
BULK = (8, 24)  # a bulk order's units (uniform); per product 0.2 % or (1 in 5 products) 2 %
LINES_PER_ORDER = 1.6  # distinct products per order: product-orders = 1.6 x store orders
SURGE_DAY, SURGE = 100, 1.8  # a Wednesday; every product x1.8 (a store-wide campaign)
BANDS = ((5.0, "slow"), (50.0, "mid"), (math.inf, "fast"))


def band_of(expected_units: np.ndarray) -> np.ndarray:
    return np.where(expected_units < 5, "slow", np.where(expected_units < 50, "mid", "fast"))


SPIKES_PER_1000_PER_DAY = 1.0  # injected spikes: 1 a day per 1,000 products (prevalence)
K_RANGE = (10.0, 50.0)  # the gamma shape of products' day-to-day noise: U(10, 50)


@dataclass(frozen=True)
class StoreSpec:
    name: str
    orders_per_day: float
    products: int
    zipf_s: float = 0.9
    surge_spikes: int = 2  # injected product spikes on the surge day itself

    def spikes_per_band(self, days: int) -> int:
        """A third of the store's spikes per band (1 a day per 1,000 products)."""
        return max(4, round(self.products / 1000 * SPIKES_PER_1000_PER_DAY
                            * (days - FIRST_JUDGED) / 3))  # fmt: skip


STORES = (
    StoreSpec("small (300 orders/day)", 300, 250),
    StoreSpec("mid (3,000 orders/day)", 3_000, 2_000),
    StoreSpec("large (30,000 orders/day)", 30_000, 10_000),
)


@dataclass
class Sim:
    spec: StoreSpec
    seed: int
    units: np.ndarray  # (N, T) int
    orders: np.ndarray  # (N, T) int: orders containing the product
    expected_units: np.ndarray  # (N,) mature weekly-average units a day (the band)
    band: np.ndarray  # (N,) "slow" | "mid" | "fast"
    first_sale: np.ndarray  # (N,) first day with a sale (T if none)
    true_orders_mean: np.ndarray  # (N, T) the model's mean orders (no day noise, no spike)
    k: np.ndarray  # (N,) the gamma shape of the product's day-to-day noise
    spikes: dict[tuple[int, int], float]  # (product, day) -> multiplier
    surge_day: int = SURGE_DAY

    @property
    def store_units(self) -> np.ndarray:
        return self.units.sum(axis=0)


def simulate(spec: StoreSpec, seed: int, days: int = DAYS) -> Sim:
    """A store's daily demand per product, with ground truth.

    - Product-orders a day (orders containing the product) have a weekly-average rate from a
      Zipf(0.9) popularity with a lognormal(0, 0.3) jitter, scaled so that the store makes
      `orders_per_day` orders of 1.6 products each. Expected units = rate x mean order size.
    - Day D's orders of product i ~ Poisson(rate_i x weekday(D) x store level(D) x surge(D)
      x ramp_i(D) x drift_i(D) x G_iD), G ~ Gamma(k_i, 1/k_i), k_i ~ U(10, 50): a negative
      binomial (Poisson-gamma) with day-to-day noise of CV 0.14-0.32 on top of Poisson.
      Store level: lognormal(0, 0.04) a day, shared by all products (weather, marketing).
      Drift: a log random walk, sd 0.01 a day. Weekday: Mon..Sun 0.90 .. 1.20 (a weekend bump).
    - Units of an order: 1 (70 %), 2 (18 %), 3 (7 %), 4 (3 %), 5 (2 %); with probability
      p_bulk a bulk order of 8-24 instead (p_bulk 0.2 %, or 2 % for one product in five).
    - Late launches: 20 % of products launch on a day U(7, 85), ramping up as
      1 - exp(-age / 7) (half their level after 5 days).
    - Surge: day 100 (a Wednesday), every product x1.8.
    - Spikes: per seed, 1 a day per 1,000 products over the judged days, a third per band
      (`spikes_per_band`; at most 3 per product), plus `surge_spikes` on the surge day,
      multiplier U(2, 5), on days >= 28 and >= launch + 21, >= 14 days apart per product;
      slow-band spikes go to products of 1-5 units a
      day (below 1 a day a 5x spike is a few units: nothing to detect). The extra demand is
      Poisson((m - 1) x the day's mean orders) extra orders, of ordinary sizes (no bulk).
    """
    rng = np.random.default_rng([seed, spec.products])
    n, t = spec.products, days
    weights = 1.0 / np.arange(1, n + 1) ** spec.zipf_s * rng.lognormal(0.0, 0.3, n)
    rate = weights / weights.sum() * spec.orders_per_day * LINES_PER_ORDER
    rng.shuffle(rate)
    p_bulk = np.where(rng.random(n) < 0.2, 0.02, 0.002)
    mean_qty = (1 - p_bulk) * float((QTY_VALUES * QTY_P).sum()) + p_bulk * sum(BULK) / 2
    expected_units = rate * mean_qty
    k = rng.uniform(*K_RANGE, n)
    launch = np.where(rng.random(n) < 0.2, rng.integers(7, 86, n), 0)
    day = np.arange(t)
    age = day[None, :] - launch[:, None]
    ramp = np.where(age < 0, 0.0, np.where(launch[:, None] > 0, 1 - np.exp(-(age + 1) / 7), 1.0))
    drift = np.exp(np.cumsum(rng.normal(0, 0.01, (n, t)), axis=1))
    level = rng.lognormal(0.0, 0.04, t)
    surge = np.ones(t)
    surge[SURGE_DAY] = SURGE
    mean = rate[:, None] * WEEKLY[day % 7][None, :] * (level * surge)[None, :] * ramp * drift
    noise = rng.gamma(k[:, None], 1.0 / k[:, None], (n, t))
    orders = rng.poisson(mean * noise)
    band = band_of(expected_units)

    # spikes
    spikes: dict[tuple[int, int], float] = {}
    taken: dict[int, list[int]] = {}

    def place(pool: np.ndarray, count: int, day_choice: int | None) -> None:
        tries = 0
        while count and tries < 10_000:
            tries += 1
            i = int(rng.choice(pool))
            lo = max(FIRST_JUDGED, int(launch[i]) + 21)
            if lo >= t:
                continue
            d = day_choice if day_choice is not None else int(rng.integers(lo, t))
            if d < lo or (d == SURGE_DAY and day_choice is None):
                continue
            if len(taken.get(i, [])) >= 3 or any(abs(d - e) < 14 for e in taken.get(i, [])):
                continue
            taken.setdefault(i, []).append(d)
            spikes[(i, d)] = round(float(rng.uniform(2, 5)), 2)
            count -= 1

    pools = {
        "slow": np.flatnonzero((expected_units >= 1) & (band == "slow")),
        "mid": np.flatnonzero(band == "mid"),
        "fast": np.flatnonzero(band == "fast"),
    }
    for name in ("slow", "mid", "fast"):
        if len(pools[name]):
            place(pools[name], spec.spikes_per_band(t), None)
    place(np.concatenate([pools["mid"], pools["fast"]]), spec.surge_spikes, SURGE_DAY)
    extra = np.zeros_like(orders)
    for (i, d), m in spikes.items():
        extra[i, d] = rng.poisson((m - 1) * mean[i, d])
    orders_all = orders + extra

    # units: each order's size (bulk by the product's propensity; spike orders never bulk)
    cells = np.repeat(np.arange(n * t), orders.ravel())
    qty = rng.choice(QTY_VALUES, cells.size, p=QTY_P)
    bulk = rng.random(cells.size) < p_bulk[cells // t]
    qty = np.where(bulk, rng.integers(BULK[0], BULK[1] + 1, cells.size), qty)
    units = np.bincount(cells, weights=qty, minlength=n * t).reshape(n, t)
    cells = np.repeat(np.arange(n * t), extra.ravel())
    units += np.bincount(
        cells, weights=rng.choice(QTY_VALUES, cells.size, p=QTY_P), minlength=n * t
    ).reshape(n, t)
    units = units.astype(np.int64)
    sold = units > 0
    first_sale = np.where(sold.any(axis=1), sold.argmax(axis=1), t)
    return Sim(spec, seed, units, orders_all.astype(np.int64), expected_units, band,
               first_sale, mean, k, spikes)  # fmt: skip


# --------------------------------------------------------------------------- statistics


def percentiles(history: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """`shopstream.spikes.rule.percentiles`, verbatim: each row's q-th percentile over its
    non-NaN values (numpy's linear method) and how many values it has."""
    rows = np.sort(np.asarray(history, dtype=np.float64), axis=1)
    counts = np.sum(~np.isnan(rows), axis=1)
    rank = (np.maximum(counts, 1) - 1) * (q / 100.0)
    lo = np.floor(rank).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(counts - 1, 0))
    if rows.shape[1] == 0:
        return np.full(rows.shape[0], np.nan), counts
    low = np.take_along_axis(rows, lo[:, None], axis=1)[:, 0]
    high = np.take_along_axis(rows, hi[:, None], axis=1)[:, 0]
    frac = rank - lo
    value = np.where(frac >= 0.5, high - (high - low) * (1 - frac), low + (high - low) * frac)
    return np.where(counts > 0, value, np.nan), counts


def weekday_factors(store_units: np.ndarray, weekdays: np.ndarray) -> np.ndarray:
    """`shopstream.spikes.rule.weekday_factors`, verbatim."""
    factors = np.ones(7)
    if store_units.size == 0 or store_units.mean() <= 0:
        return factors
    overall = store_units.mean()
    for day in range(7):
        values = store_units[weekdays == day]
        if values.size and values.mean() > 0:
            factors[day] = values.mean() / overall
    return factors


_lgamma = np.frompyfunc(math.lgamma, 1, 1)


def lgamma(x: np.ndarray) -> np.ndarray:
    return np.asarray(_lgamma(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def _betacf(a: np.ndarray, b: np.ndarray, x: np.ndarray, itmax: int = 2000) -> np.ndarray:
    """The continued fraction of the incomplete beta function (modified Lentz), vectorised."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = np.where(np.abs(d) < tiny, tiny, d)
    d = 1.0 / d
    h = d.copy()
    for m in range(1, itmax + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < tiny, tiny, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < tiny, tiny, c)
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < tiny, tiny, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < tiny, tiny, c)
        d = 1.0 / d
        delta = d * c
        h *= delta
        if np.all(np.abs(delta - 1.0) < eps):
            break
    return h


def betainc(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The regularised incomplete beta function I_x(a, b), a, b > 0, 0 <= x <= 1."""
    a, b, x = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(a, b, x))
    out = np.where(x <= 0, 0.0, 1.0)
    inner = (x > 0) & (x < 1)
    if not inner.any():
        return out
    a, b, x = a[inner], b[inner], x[inner]
    lbeta = lgamma(a) + lgamma(b) - lgamma(a + b)
    front = np.exp(a * np.log(x) + b * np.log1p(-x) - lbeta)
    swap = x > (a + 1.0) / (a + b + 2.0)
    aa, bb, xx = np.where(swap, b, a), np.where(swap, a, b), np.where(swap, 1 - x, x)
    value = front * _betacf(aa, bb, xx) / aa
    out[inner] = np.where(swap, 1.0 - value, value)
    return out


R_MAX = 1e6  # the shape of a history no more variable than Poisson (NB -> Poisson)


def nb_shape(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Method-of-moments NB shape r (var = m + m^2 / r). A history no more variable than
    Poisson gets r = max(1e4, 100 m): variance within 1 % of Poisson's, and the continued
    fraction (O(sqrt(r)) steps) stays short."""
    cap = np.maximum(1e4, 100 * np.nan_to_num(mean, nan=0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(var > mean, mean**2 / (var - mean), cap)
    r = np.nan_to_num(r, nan=1e4)
    return np.clip(r, 1e-3, cap)


def nb_sf(x: np.ndarray, mean: np.ndarray, r: np.ndarray) -> np.ndarray:
    """P(X >= x) for X ~ NB(mean, shape r): I_{m/(m+r)}(x, r) for x >= 1; 1 for x <= 0."""
    x, mean, r = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(x, mean, r))
    out = np.ones_like(x)
    pos = x >= 1
    zero_mean = pos & (mean <= 0)
    out[zero_mean] = 0.0
    live = pos & (mean > 0)
    if live.any():
        out[live] = betainc(x[live], r[live], mean[live] / (mean[live] + r[live]))
    return out


def z_upper(alpha: float) -> float:
    """The standard normal's upper alpha quantile (bisection on erfc)."""
    lo, hi = 0.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(mid / math.sqrt(2)) > alpha:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# --------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Rule:
    name: str
    lookback: int = 90
    min_history: int = 14
    min_units: int = 5
    min_orders: int = 0
    margin: float = 1.6
    weekday: bool = True
    test: str | None = None  # None | "units" | "orders" | "both" | "qp-units" | "oracle"
    alpha: float = 1e-4
    store: str | None = None  # None | "total" | "trimmed" | "level": store events (+ baseline)
    store_margin: float = 1.3
    recent: int = 0  # > 0: the test's mean from the last `recent` history days only
    predictive: bool = True  # variance x (1 + 1/n): the mean is estimated too
    winsor: float = 0.0  # > 0: history days capped at winsor x the series' P95 for the moments
    mask_events: bool = True  # earlier store-event days left out of the products' histories


@dataclass
class Baseline:
    """One day's per-product statistics of the (weekday-adjusted) history."""

    p95: np.ndarray
    n: np.ndarray
    mean_u: np.ndarray
    var_u: np.ndarray
    mean_o: np.ndarray
    var_o: np.ndarray
    recent_u: np.ndarray | None = None
    recent_o: np.ndarray | None = None


def _nanmoments(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ok = ~np.isnan(h)
    n = ok.sum(axis=1)
    z = np.where(ok, h, 0.0)
    s = z.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n
        var = (np.where(ok, (h - mean[:, None]) ** 2, 0.0)).sum(axis=1) / (n - 1)
    return mean, var, n


def history_window(
    units: np.ndarray, orders: np.ndarray, store_units: np.ndarray, first_sale: np.ndarray,
    d: int, lookback: int, weekday: bool, excluded: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Day d's weekday-adjusted histories (units, orders): the `lookback` days before d, NaN
    before each product's first sale and on `excluded` days (earlier store events)."""
    lo = max(0, d - lookback)
    days = np.arange(lo, d)
    valid = days[None, :] >= first_sale[:, None]
    keep = np.ones(d - lo, dtype=bool) if excluded is None else ~excluded[lo:d]
    valid &= keep[None, :]
    hu = np.where(valid, units[:, lo:d], np.nan)
    ho = np.where(valid, orders[:, lo:d], np.nan)
    if weekday and d > lo:
        wds = days % 7
        selling = keep & (store_units[lo:d] > 0)
        f = weekday_factors(store_units[lo:d][selling].astype(float), wds[selling])
        scale = f[d % 7] / f[wds]
        hu = hu * scale[None, :]
        ho = ho * scale[None, :]
    return hu, ho


def baseline(hu: np.ndarray, ho: np.ndarray, recent: int = 0, winsor: float = 0.0) -> Baseline:
    """P95 of units; mean and variance of units and orders (with `winsor`, of the history
    with each day capped at winsor x that series' P95: an earlier spike in the history then
    does not pass for the product's everyday noise)."""
    p95, n = percentiles(hu, 95.0)
    if winsor:
        p95o, _ = percentiles(ho, 95.0)
        hu = np.minimum(hu, winsor * np.maximum(p95, 1.0)[:, None])
        ho = np.minimum(ho, winsor * np.maximum(p95o, 1.0)[:, None])
    mu, vu, _ = _nanmoments(hu)
    mo, vo, _ = _nanmoments(ho)
    b = Baseline(p95, n, mu, vu, mo, vo)
    if recent:
        with np.errstate(invalid="ignore"):
            b.recent_u = np.nanmean(hu[:, -recent:], axis=1) if hu.shape[1] else mu
            b.recent_o = np.nanmean(ho[:, -recent:], axis=1) if ho.shape[1] else mo
    return b


def _tail(x: np.ndarray, mean: np.ndarray, var: np.ndarray, n: np.ndarray, rule: Rule,
          level: float, recent_mean: np.ndarray | None) -> np.ndarray:  # fmt: skip
    """P(X >= x) under the product's own NB (mean and MoM shape from its history)."""
    if rule.predictive:
        var = var * (1 + 1 / np.maximum(n, 1))
    r = nb_shape(mean, var)
    m = mean if recent_mean is None else np.where(np.isnan(recent_mean), mean, recent_mean)
    return nb_sf(x, m * level, r)


def apply(rule: Rule, b: Baseline, units: np.ndarray, orders: np.ndarray, level: float = 1.0,
          oracle_mean: np.ndarray | None = None, oracle_k: np.ndarray | None = None,
          ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The rule's verdicts for one day (bool per product) and the p-values (NaN if untested).
    `level`: the store's level ratio on a store-event day (1 otherwise)."""
    p95 = np.nan_to_num(b.p95, nan=np.inf)
    spike = (
        (b.n >= rule.min_history)
        & (units >= rule.min_units)
        & (orders >= rule.min_orders)
        & (units > rule.margin * p95 * level)
    )
    pvals = np.full(units.shape, np.nan)
    if rule.test is None or not spike.any():
        return spike, pvals
    i = np.flatnonzero(spike)
    if rule.test == "oracle":  # the true NB of orders: what is detectable at all
        p = nb_sf(orders[i], oracle_mean[i], oracle_k[i])
    elif rule.test == "qp-units":  # quasi-Poisson normal bound on units
        m = b.mean_u[i] * level
        phi = np.maximum(1.0, b.var_u[i] / np.maximum(b.mean_u[i], 1e-9))
        z = z_upper(rule.alpha)
        p = np.where(units[i] > m + z * np.sqrt(phi * m), 0.0, 1.0)
    else:
        ru = None if b.recent_u is None else b.recent_u[i]
        ro = None if b.recent_o is None else b.recent_o[i]
        pu = _tail(units[i], b.mean_u[i], b.var_u[i], b.n[i], rule, level, ru)
        po = _tail(orders[i], b.mean_o[i], b.var_o[i], b.n[i], rule, level, ro)
        p = {"units": pu, "orders": po, "both": np.maximum(pu, po)}[rule.test]
    pvals[i] = p
    spike[i] &= p < rule.alpha
    return spike, pvals


# --------------------------------------------------------------------------- store events


def store_events(sim: Sim, method: str, margin: float, lookback: int = 90,
                 min_history: int = 14) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Each day's store event flag and level ratio (1.0 on ordinary days), day by day as the
    detector would (earlier events are left out of later histories).

    - "total": the store's units on D against margin x P95 of its own weekday-adjusted daily
      units (the issue's suggestion); level = units / mean of that history.
    - "trimmed": level = sum of units / sum of baseline means over the products with a mean
      >= 1 unit, leaving out the 10 % highest and lowest ratios (one product's spike cannot
      move it); an event when it is above margin x P95 of its own history of levels.
    - "level": the same level; an event when it is above `margin` itself (no history of
      levels needed: the level is already relative to the weekday-adjusted baseline).
    Returns (events, levels, the statistic of every day).
    """
    t = sim.units.shape[1]
    store = sim.store_units.astype(float)
    events = np.zeros(t, dtype=bool)
    levels = np.ones(t)
    raw = np.full(t, np.nan)  # the statistic each day
    for d in range(t):
        lo = max(0, d - lookback)
        keep = ~events[lo:d]
        if method == "total":
            wds = np.arange(lo, d) % 7
            f = weekday_factors(store[lo:d][keep], wds[keep])
            hist = store[lo:d][keep] * f[d % 7] / f[wds[keep]]
            raw[d] = store[d]
            if hist.size >= min_history:
                p95 = np.percentile(hist, 95)
                if store[d] > margin * p95:
                    events[d], levels[d] = True, store[d] / hist.mean()
        else:
            hu, _ = history_window(sim.units, sim.orders, sim.store_units, sim.first_sale,
                                   d, lookback, True, events)  # fmt: skip
            if hu.shape[1] == 0:
                continue
            mu, _, n = _nanmoments(hu)
            ok = (n >= min_history) & (mu >= 1)
            if ok.sum() < 10:
                continue
            u, m = sim.units[ok, d].astype(float), mu[ok]
            ratio = u / m
            lo_q, hi_q = np.percentile(ratio, [10, 90])
            mid = (ratio >= lo_q) & (ratio <= hi_q)
            raw[d] = u[mid].sum() / m[mid].sum()
            if method == "level":
                if raw[d] > margin:
                    events[d], levels[d] = True, raw[d]
                continue
            past = raw[lo:d][keep]
            past = past[~np.isnan(past)]
            if past.size >= min_history and raw[d] > margin * np.percentile(past, 95):
                events[d], levels[d] = True, raw[d]
    return events, levels, raw


# --------------------------------------------------------------------------- the rules tried

_TRIM = dict(test="orders", store="trimmed")
RULES: tuple[Rule, ...] = (
    Rule("A1 today: P95x1.6, wkday, >=5 u, >=16 ord", min_orders=16),
    Rule("A2 today, min_orders 0", min_orders=0),
    Rule("B1 A2 + NB units a=1e-3", test="units", alpha=1e-3),
    Rule("B2 A2 + NB units a=1e-4", test="units"),
    Rule("B3 B2 + >=3 orders", test="units", min_orders=3),
    Rule("C1 A2 + NB orders a=1e-3", test="orders", alpha=1e-3),
    Rule("C2 A2 + NB orders a=1e-4", test="orders"),
    Rule("D1 A2 + quasi-Poisson units (normal) 1e-4", test="qp-units"),
    Rule("D2 A2 + NB units AND orders 1e-4", test="both"),
    Rule("D3 C2 + store events (total)", test="orders", store="total"),
    Rule("D4 C2 + store events (trimmed)", **_TRIM),
    Rule("D5 D4 + winsorised moments (1.6 P95)", **_TRIM, winsor=1.6),
    Rule("D6 D5, a=1e-5", **_TRIM, winsor=1.6, alpha=1e-5),
    Rule("D7 D5, margin 1.3", **_TRIM, winsor=1.6, margin=1.3),
    Rule("D8 D5, margin 1.3, a=1e-5", **_TRIM, winsor=1.6, margin=1.3, alpha=1e-5),
    Rule("D9 D5, mean of last 28 days", **_TRIM, winsor=1.6, recent=28),
    Rule("D10 D5 on units AND orders", test="both", store="trimmed", winsor=1.6),
    Rule("D11 D5 on units, >=3 orders", test="units", store="trimmed", winsor=1.6, min_orders=3),
    Rule("D12 D5, margin 1.0", **_TRIM, winsor=1.6, margin=1.0),
    Rule("D13 D7 + >=3 orders", **_TRIM, winsor=1.6, margin=1.3, min_orders=3),
    Rule("D14 D7, a=3e-5", **_TRIM, winsor=1.6, margin=1.3, alpha=3e-5),
    Rule(
        "D15 D7, store level > 1.3 (no level history)",
        test="orders",
        store="level",
        winsor=1.6,
        margin=1.3,
    ),
    Rule(
        "D16 D15, store-event days kept in histories",
        test="orders",
        store="level",
        winsor=1.6,
        margin=1.3,
        mask_events=False,
    ),
    Rule(
        "R recommended: D15, a=3e-5, >=3 orders",
        test="orders",
        store="level",
        winsor=1.6,
        margin=1.3,
        alpha=3e-5,
        min_orders=3,
    ),
    Rule("O oracle: true NB of orders 1e-4, no P95", test="oracle", margin=0.0, min_units=0),
)
RECOMMENDED = "R recommended: D15, a=3e-5, >=3 orders"


# --------------------------------------------------------------------------- scoring


@dataclass
class Score:
    rule: str
    store: str
    products: int
    days: int = 0
    tp: dict[str, int] = field(default_factory=lambda: {"slow": 0, "mid": 0, "fast": 0})
    fn: dict[str, int] = field(default_factory=lambda: {"slow": 0, "mid": 0, "fast": 0})
    fp: dict[str, int] = field(default_factory=lambda: {"slow": 0, "mid": 0, "fast": 0})
    fp_tail: int = 0  # false alarms on products below 1 unit a day (counted in fp["slow"])
    fp_kinds: dict[str, int] = field(default_factory=dict)  # young / bulk / surge / other
    surge_fp: int = 0  # product false alarms on the surge day
    surge_event: int = 0  # seeds whose surge day was a store event
    false_events: int = 0  # store events on other days
    seeds: int = 0
    by_mult: dict[str, list[int]] = field(default_factory=dict)  # "2-3" -> [tp, total]
    levels: list[list[float]] = field(default_factory=list)  # per seed: max, median, surge
    detectable: int = 0  # injected spikes the oracle detects (true NB of orders, a = 1e-4)
    detectable_tp: int = 0  # ... of which this rule found

    def r_detectable(self) -> float:
        return self.detectable_tp / self.detectable if self.detectable else float("nan")

    def p(self) -> float:
        tp, fp = sum(self.tp.values()), sum(self.fp.values())
        return tp / (tp + fp) if tp + fp else 1.0

    def r(self, band: str | None = None) -> float:
        tp = sum(self.tp.values()) if band is None else self.tp[band]
        fn = sum(self.fn.values()) if band is None else self.fn[band]
        return tp / (tp + fn) if tp + fn else float("nan")

    def fa(self) -> float:  # false alarms a day per 1,000 products
        return sum(self.fp.values()) / self.days / self.products * 1000

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "precision": round(self.p(), 4),
            "recall": round(self.r(), 4),
            "recall_by_band": {b: round(self.r(b), 4) for b in ("slow", "mid", "fast")},
            "false_alarms_per_day_per_1000": round(self.fa(), 4),
            "recall_of_detectable": round(self.r_detectable(), 4),
        }


def evaluate_store(sim: Sim, rules: tuple[Rule, ...], scores: dict[str, Score]) -> None:
    t = sim.units.shape[1]
    methods = {r.store for r in rules}
    ev = {m: store_events(sim, m, next(r.store_margin for r in rules if r.store == m))
          if m else (np.zeros(t, dtype=bool), np.ones(t), np.ones(t)) for m in methods}  # fmt: skip
    groups: dict[tuple[Any, ...], list[Rule]] = {}
    for r in rules:
        key = (r.store, r.lookback, r.weekday, r.recent, r.winsor, r.mask_events)
        groups.setdefault(key, []).append(r)
    for rule in rules:
        s = scores[rule.name]
        s.seeds += 1
        if rule.store:
            events, _, raw = ev[rule.store]
            ordinary = np.delete(raw[FIRST_JUDGED:], sim.surge_day - FIRST_JUDGED)
            s.levels.append([round(float(np.nanmax(ordinary)), 3),
                             round(float(np.nanpercentile(ordinary, 50)), 3),
                             round(float(raw[sim.surge_day]), 3)])  # fmt: skip
            s.surge_event += int(events[sim.surge_day])
            s.false_events += int(events[FIRST_JUDGED:].sum() - events[sim.surge_day])
    truth = sim.spikes
    for d in range(FIRST_JUDGED, t):
        u, o = sim.units[:, d], sim.orders[:, d]
        real = {i for (i, day) in truth if day == d}
        idx = np.array(sorted(real), dtype=np.int64)
        history_days = np.clip(d - sim.first_sale[idx], 0, 90)
        p_true = nb_sf(o[idx], sim.true_orders_mean[idx, d], sim.k[idx])
        detectable = set(idx[(history_days >= 14) & (p_true < 1e-4)].tolist())
        for (method, lookback, weekday, recent, winsor, mask), members in groups.items():
            events, levels, _ = ev[method]
            excluded = events if method and mask else None
            hu, ho = history_window(sim.units, sim.orders, sim.store_units, sim.first_sale,
                                    d, lookback, weekday, excluded)  # fmt: skip
            b = baseline(hu, ho, recent, winsor)
            level = float(levels[d]) if method else 1.0
            for rule in members:
                spike, _ = apply(rule, b, u, o, level, sim.true_orders_mean[:, d], sim.k)
                found = set(np.flatnonzero(spike).tolist())
                s = scores[rule.name]
                s.detectable += len(detectable)
                s.detectable_tp += len(detectable & found)
                for i in found & real:
                    s.tp[sim.band[i]] += 1
                for i in real - found:
                    s.fn[sim.band[i]] += 1
                for i in found - real:
                    s.fp[sim.band[i]] += 1
                    s.fp_tail += int(sim.expected_units[i] < 1)
                    s.surge_fp += int(d == sim.surge_day)
                    kind = ("surge day" if d == sim.surge_day
                            else "young (<35 d)" if d - sim.first_sale[i] < 35
                            else "bulk (units >= 2x orders + 8)" if u[i] >= 2 * o[i] + 8
                            else "other")  # fmt: skip
                    s.fp_kinds[kind] = s.fp_kinds.get(kind, 0) + 1
                for i in real:
                    m = truth[(i, d)]
                    key = f"{sim.band[i]} {int(m)}-{int(m) + 1}x"
                    row = s.by_mult.setdefault(key, [0, 0])
                    row[0] += int(i in found)
                    row[1] += 1
        for rule in rules:
            scores[rule.name].days += 1


def quality(seeds: int, stores: tuple[StoreSpec, ...], rules: tuple[Rule, ...],
            report=print) -> dict[str, dict[str, Score]]:  # fmt: skip
    out: dict[str, dict[str, Score]] = {}
    for spec in stores:
        scores = {r.name: Score(r.name, spec.name, spec.products) for r in rules}
        for seed in range(seeds):
            started = time.monotonic()
            sim = simulate(spec, seed)
            evaluate_store(sim, rules, scores)
            report(f"{spec.name} seed {seed}: {len(sim.spikes)} spikes, "
                   f"store units/day {sim.store_units.mean():,.0f}, "
                   f"orders/day {sim.orders.sum(axis=0).mean() / LINES_PER_ORDER:,.0f}, "
                   f"bands {dict(zip(*np.unique(sim.band, return_counts=True), strict=True))} "
                   f"({time.monotonic() - started:.1f} s)")  # fmt: skip
        out[spec.name] = scores
    return out


def table(results: dict[str, dict[str, Score]]) -> str:
    lines = []
    for store, scores in results.items():
        lines.append(f"\n{store}")
        lines.append(f"{'rule':48} {'P':>6} {'R':>6} {'Rslow':>6} {'Rmid':>6} {'Rfast':>6} "
                     f"{'FA/d/1k':>8} {'surgeFP':>7} {'surgeEv':>7} {'falseEv':>7} "
                     f"{'R|det':>6}")  # fmt: skip
        for s in scores.values():
            rule = next(r for r in RULES if r.name == s.rule)
            ev = f"{s.surge_event}/{s.seeds}" if rule.store else "-"
            fe = str(s.false_events) if ev != "-" else "-"
            lines.append(f"{s.rule:48} {s.p():6.3f} {s.r():6.3f} {s.r('slow'):6.3f} "
                         f"{s.r('mid'):6.3f} {s.r('fast'):6.3f} {s.fa():8.3f} "
                         f"{s.surge_fp:7d} {ev:>7} {fe:>7} {s.r_detectable():6.3f}")  # fmt: skip
        lines.append("false alarms by kind:")
        for s in scores.values():
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(s.fp_kinds.items()))
            lines.append(f"  {s.rule:46} tail(<1/day) {s.fp_tail}; {kinds}")
        lines.append("recall by band x multiplier (found/injected):")
        for s in scores.values():
            if s.rule in (RECOMMENDED,) or s.rule.startswith(("O ", "A1", "D15")):
                cells = "  ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(s.by_mult.items()))
                lines.append(f"  {s.rule:46} {cells}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- hand-built cases


def cases(rule: Rule) -> list[dict[str, Any]]:
    """The three unit-test cases, each a 90-day history (a 10-day pattern x 9, no weekday
    adjustment: a flat store), day D's units and orders, and the rule's verdict."""
    out = []
    four = [1, 3, 4, 6, 2, 5, 4, 7, 3, 5]  # mean 4, variance 3.03; single-unit orders
    noisy = [0, 3, 4, 7, 2, 5, 4, 8, 3, 4]  # mean 4, variance 4.85 (over-dispersed)
    thirty = [22, 38, 27, 35, 24, 33, 28, 36, 25, 32]  # mean 30; single-unit orders
    one_u = [0, 1, 0, 2, 1, 0, 1, 3, 1, 1]  # mean 1 unit ...
    one_o = [0, 1, 0, 1, 1, 0, 1, 2, 1, 1]  # ... from 0.8 orders a day
    specs = [
        # name, units pattern, orders pattern, units on D, orders on D
        ("4/day seller sells 16 in 16 orders", four, four, 16, 16),
        ("4/day seller sells 16 in 11 orders", four, four, 16, 11),
        ("noisier 4/day seller sells 16 in 16 orders", noisy, noisy, 16, 16),
        ("30/day seller sells 45 in 45 orders", thirty, thirty, 45, 45),
        ("30/day seller sells 80 in 80 orders", thirty, thirty, 80, 80),
        ("1/day seller: one bulk order of 10", one_u, one_o, 10, 1),
        ("1/day seller: 10 units in 6 orders", one_u, one_o, 10, 6),
        ("1/day seller: 10 units in 7 orders", one_u, one_o, 10, 7),
    ]  # fmt: skip
    for name, pu, po, u, o in specs:
        hu = np.array([pu * 9], dtype=float)
        ho = np.array([po * 9], dtype=float)
        b = baseline(hu, ho, rule.recent, rule.winsor)
        flat = replace(rule, weekday=False)
        spike, _ = apply(flat, b, np.array([u]), np.array([o]))
        var_u = b.var_u * (1 + 1 / b.n) if rule.predictive else b.var_u
        var_o = b.var_o * (1 + 1 / b.n) if rule.predictive else b.var_o
        ru, ro = nb_shape(b.mean_u, var_u), nb_shape(b.mean_o, var_o)
        pu_ = nb_sf(np.array([u]), b.mean_u, ru)
        po_ = nb_sf(np.array([o]), b.mean_o, ro)
        today, _ = apply(Rule("today", min_orders=16, weekday=False), b, np.array([u]),
                         np.array([o]))  # fmt: skip
        out.append({
            "case": name, "units": u, "orders": o,
            "p95": float(b.p95[0]), "threshold": float(rule.margin * b.p95[0]),
            "mean_units": float(b.mean_u[0]), "var_units": float(b.var_u[0]),
            "r_units": float(ru[0]), "p_units": float(pu_[0]),
            "mean_orders": float(b.mean_o[0]), "var_orders": float(b.var_o[0]),
            "r_orders": float(ro[0]), "p_orders": float(po_[0]),
            "orders_needed": {f"{a:g}": int(np.argmax(nb_sf(np.arange(1, 400), b.mean_o[0], ro[0])
                                                      < a)) + 1 for a in (1e-4, 3e-5)},
            "spike": bool(spike[0]), "today_rule_spike": bool(today[0]),
        })  # fmt: skip
    return out


# --------------------------------------------------------------------------- timing


def timing(rule: Rule, products: int = 10_000, lookback: int = 365, repeats: int = 3) -> dict:
    """One day's evaluation (the rule only: no I/O) on `products` x `lookback` days."""
    rng = np.random.default_rng(0)
    t = lookback + 1
    rate = rng.gamma(0.6, 12.0, products)  # the repo's scale benchmark's long tail
    orders = rng.poisson(rate[:, None] * rng.gamma(20, 1 / 20, (products, t)))
    units = orders + rng.binomial(orders, 0.3)
    store = units.sum(axis=0)
    first = np.where((units > 0).any(axis=1), (units > 0).argmax(axis=1), t)
    events = np.zeros(t, dtype=bool)
    d = t - 1
    times, parts = [], {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        hu, ho = history_window(units, orders, store, first, d, lookback, True, events)
        t1 = time.perf_counter()
        b = baseline(hu, ho, rule.recent, rule.winsor)
        t2 = time.perf_counter()
        # the store level ("trimmed") for day d, then the rule
        ok = (b.n >= 14) & (b.mean_u >= 1)
        ratio = units[ok, d] / b.mean_u[ok]
        lo_q, hi_q = np.percentile(ratio, [10, 90])
        mid = (ratio >= lo_q) & (ratio <= hi_q)
        _level = units[ok, d][mid].sum() / b.mean_u[ok][mid].sum()
        spike, _ = apply(rule, b, units[:, d], orders[:, d], 1.0)
        t3 = time.perf_counter()
        # worst case: the tail test for every product, not only the P95 candidates
        every = replace(rule, margin=0.0, min_units=0)
        apply(every, b, units[:, d], orders[:, d], 1.0)
        t4 = time.perf_counter()
        times.append(t3 - t0)
        parts = {"window_s": t1 - t0, "baseline_s": t2 - t1, "level_and_rule_s": t3 - t2,
                 "tail_test_all_products_s": t4 - t3, "spikes": int(spike.sum())}  # fmt: skip
    return {"products": products, "lookback": lookback, "seconds": [round(x, 3) for x in times],
            "last_run_parts": {k: round(v, 4) if isinstance(v, float) else v
                               for k, v in parts.items()}}  # fmt: skip


# --------------------------------------------------------------------------- feasibility


def feasibility(alpha: float = 1e-4, draws: int = 20_000) -> list[dict[str, Any]]:
    """The smallest spike multiplier detected with probability 0.5 and 0.9 by the best
    possible test on orders (the product's TRUE NB, one-sided at `alpha`), by usual units a
    day: a ceiling no rule estimated from a history can beat at that false-alarm rate."""
    rng = np.random.default_rng(5)
    size = float((QTY_VALUES * QTY_P).sum())
    rows = []
    for e in (1, 2, 3, 4, 5, 8, 10, 15, 20, 30, 50, 100, 300, 1000):
        lam = e / size
        row: dict[str, Any] = {"units_per_day": e, "orders_per_day": round(lam, 2)}
        for k in (math.inf, 30.0, 10.0):
            r = R_MAX if math.isinf(k) else k
            xs = np.arange(0, int(lam * 10 + 60))
            sf = nb_sf(xs, np.full(xs.shape, lam), np.full(xs.shape, r))
            x_star = int(xs[np.argmax(sf < alpha)])  # orders needed on the day
            noise = np.ones(draws) if math.isinf(k) else rng.gamma(r, 1 / r, draws)
            base = rng.poisson(lam * noise)
            found = {}
            for m in np.arange(1.0, 30.01, 0.05):
                power = float(np.mean(base + rng.poisson((m - 1) * lam, draws) >= x_star))
                for level in (0.5, 0.9):
                    if level not in found and power >= level:
                        found[level] = round(float(m), 2)
                if len(found) == 2:
                    break
            name = "poisson" if math.isinf(k) else f"k={k:g}"
            row[name] = {"orders_needed": x_star, "m50": found.get(0.5), "m90": found.get(0.9)}
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- self-test


def selftest() -> None:
    """nb_sf against exact sums of the NB pmf (math.lgamma) and the Poisson limit."""
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(300):
        m = float(rng.choice([0.3, 1, 4, 12, 30, 100, 400])) * rng.uniform(0.7, 1.3)
        r = float(rng.choice([0.5, 2, 10, 50, 1e3, R_MAX]))
        x = int(m + rng.uniform(0, 8) * math.sqrt(m + m * m / r) + 1)
        p = r / (r + m)

        def logpmf(k: int, r: float = r, p: float = p) -> float:
            return (math.lgamma(k + r) - math.lgamma(r) - math.lgamma(k + 1) + r * math.log(p)
                    + k * math.log1p(-p))  # fmt: skip

        below = math.fsum(math.exp(logpmf(k)) for k in range(x))
        terms, k = [], x  # the upper tail summed upwards (no cancellation for small tails)
        while True:
            terms.append(math.exp(logpmf(k)))
            if k > x + 50 and terms[-1] < 1e-18 * max(terms):
                break
            k += 1
        exact = math.fsum(terms) if below > 0.5 else 1.0 - below
        got = float(nb_sf(np.array([x]), np.array([m]), np.array([r]))[0])
        if exact > 1e-12:
            worst = max(worst, abs(got - exact) / exact)
    print(f"nb_sf vs exact sums: worst relative error {worst:.2e} (tails > 1e-12)")
    assert worst < 1e-6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--stores", default="small,mid,large")
    ap.add_argument("--rules", default="", help="substring filter on rule names")
    ap.add_argument("--only", default="", help="rule ids, e.g. A1,D5,O")
    ap.add_argument("--json", default="")
    ap.add_argument("--cases", action="store_true")
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--feasibility", action="store_true")
    ap.add_argument("--k", default="", help="the day-noise gamma shape range, e.g. 30,100")
    ap.add_argument("--prevalence", type=float, default=1.0, help="spikes a day per 1,000")
    args = ap.parse_args()
    global K_RANGE, SPIKES_PER_1000_PER_DAY
    if args.k:
        K_RANGE = tuple(float(v) for v in args.k.split(","))  # type: ignore[assignment]
    SPIKES_PER_1000_PER_DAY = args.prevalence
    np.seterr(all="ignore")
    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)
    rule = next(r for r in RULES if r.name == RECOMMENDED)
    if args.selftest:
        selftest()
        return
    if args.feasibility:
        for row in feasibility():
            print(json.dumps(row))
        return
    if args.cases:
        for c in cases(rule):
            print(json.dumps(c))
        return
    if args.timing:
        print(json.dumps(timing(rule)))
        return
    stores = tuple(s for s in STORES if s.name.split()[0] in args.stores.split(","))
    rules = tuple(r for r in RULES if args.rules in r.name or r.name == RECOMMENDED)
    if args.only:
        rules = tuple(r for r in rules if r.name.split()[0] in args.only.split(","))
    results = quality(args.seeds, stores, rules, report=lambda m: print(m, file=sys.stderr))
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({st: {n: s.as_dict() for n, s in sc.items()} for st, sc in results.items()},
                      f, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
