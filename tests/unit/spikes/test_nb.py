"""The negative binomial's upper tail against exact sums of its probability mass function."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shopstream.spikes.nb import betainc, nb_sf, nb_shape, orders_needed


def _exact_sf(x: int, mean: float, shape: float) -> float:
    """P(X >= x) by summing the pmf upward (until the terms vanish): the brute force."""
    p = mean / (mean + shape)

    def log_pmf(k: int) -> float:
        return (
            math.lgamma(k + shape) - math.lgamma(shape) - math.lgamma(k + 1)
            + shape * math.log1p(-p) + k * math.log(p)
        )  # fmt: skip

    total, k = 0.0, x
    while True:
        term = math.exp(log_pmf(k))
        total += term
        if k > mean and term < total * 1e-17:
            return total
        k += 1


CASES = [
    (16, 4.0, 1e4), (11, 4.0, 1e4), (16, 4.0, 17.62376), (45, 30.0, 1e4), (80, 30.0, 1e4),
    (1, 0.8, 1e4), (7, 0.8, 1e4), (3, 0.011, 1e4), (1, 2.5, 0.7), (40, 2.5, 0.7),
    (200, 150.0, 25.0), (1000, 900.0, 90_000.0), (5, 12.0, 3.0),
]  # fmt: skip


@pytest.mark.parametrize(("x", "mean", "shape"), CASES)
def test_the_tail_equals_the_exact_sum(x: int, mean: float, shape: float) -> None:
    got = float(nb_sf(np.array([x]), np.array([mean]), np.array([shape]))[0])
    assert got == pytest.approx(_exact_sf(x, mean, shape), rel=1e-8, abs=1e-300)


def test_a_large_shape_is_poisson() -> None:
    mean, x = 4.0, 12
    poisson = 1 - sum(math.exp(-mean) * mean**k / math.factorial(k) for k in range(x))
    # NB(m, r) -> Poisson(m) as r grows: off by ~x^2 / 2r (7e-6 here)
    got = float(nb_sf(np.array([x]), np.array([mean]), np.array([1e7]))[0])
    assert got == pytest.approx(poisson, rel=2e-5)


def test_edges() -> None:
    sf = nb_sf(np.array([0, -1, 1, 3]), np.array([2.0, 2.0, 0.0, 0.0]), np.array([5.0] * 4))
    assert sf.tolist() == [1.0, 1.0, 0.0, 0.0]  # P(X >= 0) = 1; a mean of 0 never sells
    assert betainc(np.array([2.0]), np.array([3.0]), np.array([0.0])).tolist() == [0.0]
    assert betainc(np.array([2.0]), np.array([3.0]), np.array([1.0])).tolist() == [1.0]
    # I_x(a, b) + I_{1-x}(b, a) = 1
    a, b, x = np.array([3.5, 40.0]), np.array([2.0, 7.0]), np.array([0.3, 0.9])
    np.testing.assert_allclose(betainc(a, b, x) + betainc(b, a, 1 - x), 1.0, rtol=1e-12)


def test_the_shape_from_moments() -> None:
    r = nb_shape(np.array([4.0, 4.0, 4.0, 0.0]), np.array([8.0, 3.0, np.nan, 0.0]))
    assert r[0] == pytest.approx(16 / 4)  # var = m + m^2 / r
    assert r[1] == 1e4  # no more variable than Poisson: the Poisson cap
    assert r[2] == 1e4  # no variance (one day): as Poisson
    assert nb_shape(np.array([500.0]), np.array([400.0]))[0] == 50_000  # cap max(1e4, 100 m)


def test_orders_needed_is_the_first_count_below_alpha() -> None:
    mean, shape, alpha = np.array([4.0, 30.0, 0.8, 250.0]), np.array([1e4, 1e4, 1e4, 12.0]), 3e-5
    need = orders_needed(mean, shape, alpha)
    assert need.tolist()[:3] == [15, 55, 7]  # docs/research/issue21-spike-guard.md
    for n, m, r in zip(need, mean, shape, strict=True):
        assert _exact_sf(int(n), m, r) < alpha <= _exact_sf(int(n) - 1, m, r)
