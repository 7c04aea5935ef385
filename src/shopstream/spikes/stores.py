"""Three simulated stores for the spike rule (issue 21): 300, 3,000 and 30,000 orders a day.

`simulate_store` draws each product's daily units and orders directly (no order documents, no
database; the generator of docs/research/issue21-spike-guard.md, bit-identical to its
prototype), with ground truth: spikes of 2-5x in every volume band, late launches, day-to-day
over-dispersion, bulk orders and a store-wide surge day. `score_store` runs rules over its
judged days with the detector's own `detect` (store events kept as `detector.run` keeps them)
and scores them (`StoreScore`): precision, recall overall and by band, false alarms per day per
1,000 products, the surge day, and the recall of the spikes an oracle that knows each
product's true distribution can see at all (`detectable`). `shopstream bench spikes --part
quality` runs it over several seeds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np

from shopstream.spikes.detector import detect
from shopstream.spikes.nb import nb_sf
from shopstream.spikes.quality import CATEGORIES, SELLERS, band_index
from shopstream.spikes.rule import Rule
from shopstream.store.records import DayDemand, History

__all__ = [
    "FIRST_JUDGED",
    "STORES",
    "SURGE_DAY",
    "SimulatedStore",
    "StoreScore",
    "StoreSpec",
    "detectable",
    "score_store",
    "score_with_labels",
    "simulate_store",
]

FIRST_JUDGED = 28  # the first judged day (spikes from here on, and >= 21 days after a launch)
SURGE_DAY, SURGE = 100, 1.8  # a Wednesday: every product x1.8 (a store-wide campaign)
_START = date(2026, 1, 5)  # day 0, a Monday (the dates do not matter)
_WEEKLY = np.array([0.90, 0.88, 0.92, 0.95, 1.05, 1.20, 1.10])  # Mon..Sun: a weekend bump
_WEEKLY = _WEEKLY / _WEEKLY.mean()
_QTY = np.array([1, 2, 3, 4, 5])  # units of the product in one order ...
_QTY_P = np.array([0.70, 0.18, 0.07, 0.03, 0.02])  # ... and how often
_BULK = (8, 24)  # a bulk order's units (uniform): 0.2 % of orders, 2 % for one product in 5
_LINES_PER_ORDER = 1.6  # distinct products per order
_K_RANGE = (10.0, 50.0)  # the gamma shape of each product's day-to-day noise
_SPIKES_PER_1000_A_DAY = 1.0


@dataclass(frozen=True)
class StoreSpec:
    name: str
    orders_per_day: float
    products: int
    zipf_s: float = 0.9  # popularity ~ 1 / rank^zipf_s
    surge_spikes: int = 2  # product spikes injected on the surge day itself

    def spikes_per_band(self, days: int) -> int:
        """A third of the store's spikes per band: 1 a day per 1,000 products when judged."""
        judged = days - FIRST_JUDGED
        return max(4, round(self.products / 1000 * _SPIKES_PER_1000_A_DAY * judged / 3))


STORES = (
    StoreSpec("small", 300, 250),
    StoreSpec("mid", 3_000, 2_000),
    StoreSpec("large", 30_000, 10_000),
)


@dataclass
class SimulatedStore:
    """A store's simulated days as the detector reads them, and their ground truth."""

    spec: StoreSpec
    seed: int
    history: History  # every simulated day; product i is row i, id i + 1
    expected_units: np.ndarray  # (N,) mature weekly-average units a day: the band
    true_orders_mean: np.ndarray  # (N, days) the model's mean orders (no day noise, no spike)
    k: np.ndarray  # (N,) the gamma shape of the product's day-to-day noise
    launch: np.ndarray  # (N,) launch day (0: on sale from the start)
    first_sale: np.ndarray  # (N,) first day with a sale (days if none)
    spikes: dict[tuple[int, int], float]  # (product row, day) -> multiplier
    prices_cents: np.ndarray  # (N,)
    surge_day: int = SURGE_DAY

    @property
    def days(self) -> int:
        return self.history.days

    @property
    def bands(self) -> np.ndarray:
        return band_index(self.expected_units)

    @property
    def orders_per_day(self) -> float:
        """The store's mean orders a day (product-orders / products per order)."""
        assert self.history.orders is not None
        return float(self.history.orders.sum(axis=0).mean()) / _LINES_PER_ORDER

    def day(self, column: int) -> date:
        return self.history.day_of(column)

    def demand(self, column: int) -> DayDemand:
        """Day `column`'s demand as the store hands it out (the products that sold)."""
        h = self.history
        assert h.orders is not None
        products = []
        for i in np.flatnonzero(h.units[:, column]):
            pid, units = int(h.product_ids[i]), int(h.units[i, column])
            cents = units * int(self.prices_cents[i])
            products.append(
                {
                    "product_id": pid,
                    "name": f"Product {pid}",
                    "category": CATEGORIES[pid % len(CATEGORIES)],
                    "units": units,
                    "orders": int(h.orders[i, column]),
                    "revenue_cents": cents,
                    "revenue": cents / 100,
                }
            )
        return DayDemand(self.day(column), products, [int(v) for v in h.store_hours[column]])


def simulate_store(spec: StoreSpec, seed: int, days: int = 120) -> SimulatedStore:
    """A store's daily units and orders per product, with ground truth (pure numpy).

    - Product-orders a day (orders with the product) have a weekly-average rate from a Zipf
      popularity with a lognormal(0, 0.3) jitter, scaled so that the store makes
      `orders_per_day` orders of 1.6 products each; expected units = rate x mean order size.
    - Day D's orders of product i ~ Poisson(rate_i x weekday(D) x store level(D) x surge(D)
      x ramp_i(D) x drift_i(D) x G), G ~ Gamma(k_i, 1/k_i), k_i ~ U(10, 50): a negative
      binomial with day-to-day noise of CV 0.14-0.32 beyond Poisson. Store level:
      lognormal(0, 0.04) a day, shared; drift: a log random walk, sd 0.01 a day.
    - An order's units: 1 (70 %), 2 (18 %), 3 (7 %), 4 (3 %), 5 (2 %), or a bulk order of 8-24
      with probability 0.2 % (2 % for one product in five).
    - Late launches: 20 % of products launch on a day U(7, 85), ramping as 1 - exp(-age / 7).
    - Surge: SURGE_DAY, every product x1.8.
    - Spikes: `spikes_per_band` per band (at most 3 per product, >= 14 days apart), plus
      `surge_spikes` mid/fast ones on the surge day, multiplier U(2, 5) of the day's mean
      orders, on days >= FIRST_JUDGED and >= launch + 21; slow-band spikes go to products of
      1-5 units a day. The extra demand is extra orders of ordinary sizes.

    The same seed gives the same data as bench/prototypes/spike_guard.py's `simulate`.
    """
    if days <= SURGE_DAY:
        raise ValueError(f"a store needs more than {SURGE_DAY} days (its surge day)")
    rng = np.random.default_rng([seed, spec.products])
    n = spec.products
    weights = 1.0 / np.arange(1, n + 1) ** spec.zipf_s * rng.lognormal(0.0, 0.3, n)
    rate = weights / weights.sum() * spec.orders_per_day * _LINES_PER_ORDER
    rng.shuffle(rate)
    p_bulk = np.where(rng.random(n) < 0.2, 0.02, 0.002)
    mean_qty = (1 - p_bulk) * float((_QTY * _QTY_P).sum()) + p_bulk * sum(_BULK) / 2
    expected_units = rate * mean_qty
    k = rng.uniform(*_K_RANGE, n)
    late = rng.random(n) < 0.2
    launch = np.where(late, rng.integers(7, 86, n), 0)
    mean = _orders_mean(rng, rate, launch, days)
    orders = rng.poisson(mean * rng.gamma(k[:, None], 1.0 / k[:, None], (n, days)))
    spikes = _place_spikes(rng, spec, band_index(expected_units), expected_units, launch, days)
    extra = np.zeros_like(orders)
    for (i, d), m in spikes.items():
        extra[i, d] = rng.poisson((m - 1) * mean[i, d])
    units = _units(rng, orders, extra, p_bulk)
    sold = units > 0
    first_sale = np.where(sold.any(axis=1), sold.argmax(axis=1), days)
    prices = np.random.default_rng([seed, spec.products, 1]).integers(199, 19_999, n)
    return SimulatedStore(
        spec, seed, _history(units, orders + extra, first_sale), expected_units, mean, k,
        launch, first_sale, spikes, prices,
    )  # fmt: skip


def _orders_mean(
    rng: np.random.Generator, rate: np.ndarray, launch: np.ndarray, days: int
) -> np.ndarray:
    """Each product's mean orders a day (weekday, store level, surge, ramp-up, drift)."""
    n, day = rate.size, np.arange(days)
    age = day[None, :] - launch[:, None]
    ramp = np.where(age < 0, 0.0, np.where(launch[:, None] > 0, 1 - np.exp(-(age + 1) / 7), 1.0))
    drift = np.exp(np.cumsum(rng.normal(0, 0.01, (n, days)), axis=1))
    level = rng.lognormal(0.0, 0.04, days)
    level[SURGE_DAY] *= SURGE
    return rate[:, None] * _WEEKLY[day % 7][None, :] * level[None, :] * ramp * drift


def _place_spikes(
    rng: np.random.Generator,
    spec: StoreSpec,
    bands: np.ndarray,
    expected_units: np.ndarray,
    launch: np.ndarray,
    days: int,
) -> dict[tuple[int, int], float]:
    spikes: dict[tuple[int, int], float] = {}
    taken: dict[int, list[int]] = {}

    def place(pool: np.ndarray, count: int, on_day: int | None) -> None:
        for _ in range(10_000):
            if not count:
                return
            i = int(rng.choice(pool))
            lo = max(FIRST_JUDGED, int(launch[i]) + 21)
            if lo >= days:
                continue
            d = on_day if on_day is not None else int(rng.integers(lo, days))
            if d < lo or (d == SURGE_DAY and on_day is None):
                continue
            before = taken.get(i, [])
            if len(before) >= 3 or any(abs(d - e) < 14 for e in before):
                continue
            taken.setdefault(i, []).append(d)
            spikes[(i, d)] = round(float(rng.uniform(2, 5)), 2)
            count -= 1

    pools = [  # below 1 unit a day a 5x spike is a few units: nothing to detect
        np.flatnonzero((bands == 0) & (expected_units >= 1)),
        np.flatnonzero(bands == 1),
        np.flatnonzero(bands == 2),
    ]
    for pool in pools:
        if pool.size:
            place(pool, spec.spikes_per_band(days), None)
    place(np.concatenate(pools[1:]), spec.surge_spikes, SURGE_DAY)
    return spikes


def _units(
    rng: np.random.Generator, orders: np.ndarray, extra: np.ndarray, p_bulk: np.ndarray
) -> np.ndarray:
    """Each product-day's units: its orders' sizes (bulk by the product's propensity; the
    spikes' extra orders are never bulk)."""
    n, days = orders.shape
    cells = np.repeat(np.arange(n * days), orders.ravel())
    qty = rng.choice(_QTY, cells.size, p=_QTY_P)
    bulk = rng.random(cells.size) < p_bulk[cells // days]
    qty = np.where(bulk, rng.integers(_BULK[0], _BULK[1] + 1, cells.size), qty)
    units = np.bincount(cells, weights=qty, minlength=n * days).reshape(n, days)
    cells = np.repeat(np.arange(n * days), extra.ravel())
    spiked = rng.choice(_QTY, cells.size, p=_QTY_P)
    units += np.bincount(cells, weights=spiked, minlength=n * days).reshape(n, days)
    return units.astype(np.int64)


def _history(units: np.ndarray, orders: np.ndarray, first_sale: np.ndarray) -> History:
    n, days = units.shape
    store_units = units.sum(axis=0)
    hours = store_units[:, None] // 24 + (np.arange(24)[None, :] < (store_units % 24)[:, None])
    return History(
        start=_START,
        product_ids=np.arange(1, n + 1, dtype=np.int64),
        units=units,
        loaded=np.ones(days, dtype=bool),
        store_units=store_units,
        store_hours=hours.astype(np.int64),  # a flat day: the rule does not read the hours
        first_sale={
            i + 1: _START + timedelta(days=int(f)) for i, f in enumerate(first_sale) if f < days
        },
        orders=orders.astype(np.int64),
        orders_from=_START,
    )


@dataclass
class StoreScore:
    """A rule's score on a simulated store, summed over seeds (`add`)."""

    rule: str
    store: str
    products: int
    seeds: int = 0
    days: int = 0  # judged store-days
    tp: list[int] = field(default_factory=lambda: [0, 0, 0])  # by band (SELLERS)
    fn: list[int] = field(default_factory=lambda: [0, 0, 0])
    fp: list[int] = field(default_factory=lambda: [0, 0, 0])
    surge_events: int = 0  # seeds whose surge day was a store event
    false_events: int = 0  # store events on other judged days
    surge_fp: int = 0  # product false alarms on the surge days
    detectable: int = 0  # injected spikes the oracle sees
    detectable_tp: int = 0  # ... of which the rule found
    events: list[dict[str, Any]] = field(default_factory=list)  # seed, day, level
    surge_levels: list[float] = field(default_factory=list)  # per seed: the surge day's level
    max_ordinary_levels: list[float] = field(default_factory=list)  # per seed: other days' max
    seconds: float = 0.0  # time in `detect`
    alarms: list[tuple[int, int, bool]] = field(default_factory=list)  # row, day, true

    @property
    def precision(self) -> float:
        tp, fp = sum(self.tp), sum(self.fp)
        return tp / (tp + fp) if tp + fp else 1.0

    def recall(self, index: int | None = None) -> float:
        """Overall, or of band SELLERS[index]."""
        tp = sum(self.tp) if index is None else self.tp[index]
        fn = sum(self.fn) if index is None else self.fn[index]
        return tp / (tp + fn) if tp + fn else math.nan

    @property
    def false_alarms(self) -> float:
        """False alarms a day per 1,000 products."""
        return sum(self.fp) / self.days / self.products * 1000 if self.days else math.nan

    @property
    def recall_of_detectable(self) -> float:
        return self.detectable_tp / self.detectable if self.detectable else math.nan

    def add(self, other: StoreScore) -> StoreScore:
        """Both scores' counts together (another seed of the same rule and store)."""
        out = StoreScore(self.rule, self.store, self.products)
        for name in ("seeds", "days", "surge_events", "false_events", "surge_fp", "detectable",
                     "detectable_tp", "seconds"):  # fmt: skip
            setattr(out, name, getattr(self, name) + getattr(other, name))
        for name in ("tp", "fn", "fp"):
            setattr(out, name, [a + b for a, b in zip(getattr(self, name), getattr(other, name),
                                                      strict=True)])  # fmt: skip
        for name in ("events", "surge_levels", "max_ordinary_levels"):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        return out

    def as_dict(self) -> dict[str, Any]:
        by_band = {name: {"tp": self.tp[b], "fn": self.fn[b], "fp": self.fp[b],
                          "recall": round(self.recall(b), 4)}
                   for b, name in enumerate(SELLERS)}  # fmt: skip
        return {
            "rule": self.rule,
            "store": self.store,
            "products": self.products,
            "seeds": self.seeds,
            "judged_days": self.days,
            "tp": sum(self.tp),
            "fp": sum(self.fp),
            "fn": sum(self.fn),
            "precision": round(self.precision, 4),
            "recall": round(self.recall(), 4),
            "by_band": by_band,
            "false_alarms_per_day_per_1000": round(self.false_alarms, 4),
            "surge_day_store_events": self.surge_events,
            "false_store_events": self.false_events,
            "surge_day_product_alarms": self.surge_fp,
            "detectable": self.detectable,
            "detectable_found": self.detectable_tp,
            "recall_of_detectable": round(self.recall_of_detectable, 4),
            "store_events": self.events,
            "surge_day_levels": self.surge_levels,
            "max_ordinary_levels": self.max_ordinary_levels,
            "detect_s": round(self.seconds, 2),
        }


def detectable(sim: SimulatedStore, alpha: float, min_history_days: int = 14) -> np.ndarray:
    """Which injected spikes (in `sim.spikes`' order) an oracle detects: the product's true
    negative binomial of orders that day (mean and shape known, no P95 condition) puts the
    day's orders below `alpha`, after at least `min_history_days` days since its first sale."""
    if not sim.spikes:
        return np.zeros(0, dtype=bool)
    assert sim.history.orders is not None
    rows, days = (np.array(v, dtype=np.int64) for v in zip(*sim.spikes, strict=True))
    p = nb_sf(sim.history.orders[rows, days], sim.true_orders_mean[rows, days], sim.k[rows])
    return (days - sim.first_sale[rows] >= min_history_days) & (p < alpha)


def _with_lead(history: History, lead: int) -> History:
    """The history with `lead` days before its start that were never loaded (the store did
    not exist): the detector reads a full lookback before every judged day."""

    def pad(a: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros((a.shape[0], lead), dtype=a.dtype), a], axis=1)

    assert history.orders is not None
    return replace(
        history,
        start=history.start - timedelta(days=lead),
        units=pad(history.units),
        orders=pad(history.orders),
        loaded=np.concatenate([np.zeros(lead, dtype=bool), history.loaded]),
        store_units=np.concatenate([np.zeros(lead, dtype=np.int64), history.store_units]),
        store_hours=np.concatenate([np.zeros((lead, 24), dtype=np.int64), history.store_hours]),
        store_events={},
    )


def score_store(
    sim: SimulatedStore,
    rules: dict[str, Rule],
    oracle_alpha: float = 1e-4,
    *,
    excluded: dict[int, set[date]] | None = None,
    score_from: int = FIRST_JUDGED,
) -> dict[str, StoreScore]:
    """Each rule's score over the store's judged days (FIRST_JUDGED on; counted from
    `score_from`), detected in order as `detector.run` does: each rule keeps the store events
    it finds, left out of its later histories, and leaves out `excluded` (product id -> days
    labelled expected). Every alarm is kept in `alarms`."""
    lookback = max(r.lookback_days for r in rules.values())
    base = _with_lead(sim.history, lookback)
    seen = {name: replace(base, store_events={}, excluded=excluded or {}) for name in rules}
    scores = {name: StoreScore(name, sim.spec.name, sim.spec.products, seeds=1) for name in rules}
    bands = sim.bands
    rows = np.array([i for i, _ in sim.spikes], dtype=np.int64)
    days = np.array([d for _, d in sim.spikes], dtype=np.int64)
    seen_by_oracle = detectable(sim, oracle_alpha)
    ordinary: dict[str, float] = {name: 0.0 for name in rules}
    for d in range(FIRST_JUDGED, sim.days):
        demand = sim.demand(d)
        real, oracle = rows[days == d], rows[(days == d) & seen_by_oracle]
        for name, rule in rules.items():
            started = time.perf_counter()
            result = detect(seen[name], demand, rule)
            s = scores[name]
            s.seconds += time.perf_counter() - started
            found = np.flatnonzero(result.verdicts.spike)
            hit = np.isin(found, real)
            missed = real[~np.isin(real, found)]
            s.alarms += [(int(r), d, bool(h)) for r, h in zip(found, hit, strict=True)]
            level, event = float(result.store["level"]), bool(result.store["event"])
            if event:
                seen[name].store_events[demand.day] = level
            if d < score_from:
                continue
            for counts, which in ((s.tp, found[hit]), (s.fp, found[~hit]), (s.fn, missed)):
                for b, c in enumerate(np.bincount(bands[which], minlength=3)):
                    counts[b] += int(c)
            s.detectable += oracle.size
            s.detectable_tp += int(np.isin(oracle, found).sum())
            s.days += 1
            if event:
                s.events.append({"seed": sim.seed, "day": d, "level": level})
            if d == sim.surge_day:
                s.surge_events += int(event)
                s.surge_fp += int((~hit).sum())
                s.surge_levels.append(level)
            else:
                s.false_events += int(event)
                ordinary[name] = max(ordinary[name], level)
    for name, s in scores.items():
        s.max_ordinary_levels.append(ordinary[name])
    return scores


def score_with_labels(
    sim: SimulatedStore, rule: Rule, oracle_alpha: float = 1e-4
) -> tuple[StoreScore, StoreScore, dict[str, int]]:
    """What labels change: a reviewer labels every alarm of the first half of the judged days
    (a real spike `expected`, as a promotion would be; a false alarm `wrong`), and the second
    half is scored before and after (the expected days left out of their products'
    baselines, as `spikes run` does). Returns (before, after, how many of each label)."""
    half = (FIRST_JUDGED + sim.days) // 2
    before = score_store(sim, {"before": rule}, oracle_alpha, score_from=half)["before"]
    expected: dict[int, set[date]] = {}
    labels = {"expected": 0, "wrong": 0}
    for row, day, real in before.alarms:
        if day < half:
            labels["expected" if real else "wrong"] += 1
            if real:
                expected.setdefault(row + 1, set()).add(sim.day(day))
    after = score_store(sim, {"after": rule}, oracle_alpha, excluded=expected, score_from=half)
    return before, after["after"], labels
