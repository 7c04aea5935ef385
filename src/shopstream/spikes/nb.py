"""The negative binomial's upper tail, in numpy (the project has no scipy).

The spike rule's noise guard asks how unlikely a product's orders on a day are under a negative
binomial fitted to its own daily orders (docs/spikes.md). For X ~ NB(mean m, shape r), i.e.
variance m + m^2 / r:

    P(X >= x) = I_p(x, r),  p = m / (m + r),  x >= 1

where I is the regularised incomplete beta function, computed here by its continued fraction
(modified Lentz), vectorised over products; `math.lgamma` supplies the log-gamma terms. Checked
against exact upward sums of the probability mass function in tests/unit/spikes/test_nb.py.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["betainc", "nb_sf", "nb_shape", "orders_needed", "poisson_shape"]

_lgamma = np.frompyfunc(math.lgamma, 1, 1)


def _lg(x: np.ndarray) -> np.ndarray:
    return np.asarray(_lgamma(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def _betacf(a: np.ndarray, b: np.ndarray, x: np.ndarray, itmax: int = 5000) -> np.ndarray:
    """The incomplete beta function's continued fraction (modified Lentz), for x below the
    mean of the beta distribution (where it converges fast)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = 1.0 / np.where(np.abs(d) < tiny, tiny, d)
    h = d.copy()
    for m in range(1, itmax + 1):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / np.where(np.abs(d) < tiny, tiny, d)
            c = 1.0 + aa / c
            c = np.where(np.abs(c) < tiny, tiny, c)
            delta = d * c
            h *= delta
        if np.all(np.abs(delta - 1.0) < eps):
            break
    return h


def betainc(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    a, b, x = (np.array(v, dtype=np.float64) for v in np.broadcast_arrays(a, b, x))
    out = np.where(x <= 0, 0.0, 1.0)
    inner = (x > 0) & (x < 1)
    if not inner.any():
        return out
    a, b, x = a[inner], b[inner], x[inner]
    front = np.exp(a * np.log(x) + b * np.log1p(-x) - (_lg(a) + _lg(b) - _lg(a + b)))
    swap = x > (a + 1.0) / (a + b + 2.0)  # use I_x(a, b) = 1 - I_{1-x}(b, a) there
    aa, bb, xx = np.where(swap, b, a), np.where(swap, a, b), np.where(swap, 1 - x, x)
    value = front * _betacf(aa, bb, xx) / aa
    out[inner] = np.where(swap, 1.0 - value, value)
    return out


def poisson_shape(mean: np.ndarray) -> np.ndarray:
    """The shape standing for "no more variable than Poisson": max(10^4, 100 m) keeps the
    variance within 1 % of Poisson's and the continued fraction short (O(sqrt(r)) steps)."""
    return np.maximum(1e4, 100 * np.nan_to_num(np.asarray(mean, dtype=np.float64), nan=0.0))


def nb_shape(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """The method-of-moments shape r (var = m + m^2 / r); `poisson_shape` for a history no
    more variable than Poisson (or without a variance)."""
    mean = np.asarray(mean, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    cap = poisson_shape(mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(var > mean, mean**2 / (var - mean), cap)
    r = np.where(np.isnan(r), cap, r)
    return np.clip(r, 1e-3, cap)


def nb_sf(x: np.ndarray, mean: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """P(X >= x) for X ~ NB(mean, shape): 1 for x <= 0; for a mean of 0, 0 for x >= 1."""
    x, mean, shape = (np.array(v, dtype=np.float64) for v in np.broadcast_arrays(x, mean, shape))
    out = np.ones_like(x)
    positive = x >= 1
    out[positive & (mean <= 0)] = 0.0
    live = positive & (mean > 0)
    if live.any():
        m, r = mean[live], shape[live]
        out[live] = betainc(x[live], r, m / (m + r))
    return out


def orders_needed(
    mean: np.ndarray, shape: np.ndarray, alpha: float, limit: int = 1 << 20
) -> np.ndarray:
    """The smallest count x with P(X >= x) < alpha, per product (what a day would have needed
    to pass the test): a bisection over x, the tail being decreasing in x."""
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    shape = np.broadcast_to(np.asarray(shape, dtype=np.float64), mean.shape)
    lo = np.zeros(mean.shape)  # P(X >= lo) >= alpha (P(X >= 0) = 1)
    hi = np.maximum(2.0, np.ceil(mean) * 2 + 10)
    while True:  # grow hi until its tail is below alpha
        short = nb_sf(hi, mean, shape) >= alpha
        if not short.any() or hi.max() >= limit:
            break
        hi = np.where(short, hi * 2, hi)
    while np.any(hi - lo > 1):
        mid = np.floor((lo + hi) / 2)
        above = nb_sf(mid, mean, shape) >= alpha
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return hi.astype(np.int64)
