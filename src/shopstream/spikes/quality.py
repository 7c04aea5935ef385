"""How good is the rule? Precision and recall against the simulator's injected spikes.

`simulate` runs the simulator's own demand model (the one `shopstream simulate` sends through
the API) for a span of days, with injected spikes as its ground truth, and writes what the
streaming job makes of those orders with the job's own code (`domain.rollups.order_deltas`, the
store's rollup writer): the per-day product counters and the hourly totals the detector reads.
The order documents, markers and histories are left out (the detector never reads them, and
writing the suite's 180,000 orders would add over a minute to its quality test); Kafka and
Spark are not involved: this measures the rule, not the pipeline. `evaluate` runs rules over
every day and `score` compares their spikes with the injected ones, overall and by the
product's volume band.

The three simulated stores of issue 21 (300 to 30,000 orders a day, drawn without a database)
are in `shopstream.spikes.stores`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from shopstream.domain.clock import day_bounds
from shopstream.domain.rollups import DAY_PRODUCT, HOUR, order_deltas
from shopstream.simulator.model import DemandModel, Spike, plan_spikes
from shopstream.spikes.detector import detect, run
from shopstream.spikes.rule import Rule
from shopstream.store.protocols import Store

__all__ = [
    "BANDS",
    "CATEGORIES",
    "SELLERS",
    "Score",
    "band",
    "evaluate",
    "score",
    "simulate",
]

# (upper bound of expected units a day, name)
BANDS = ((5.0, "low (<5 units/day)"), (50.0, "mid (5-50)"), (math.inf, "high (>=50)"))
CATEGORIES = ("Books", "Toys", "Garden", "Kitchen", "Sports", "Music", "Beauty", "Office")


SELLERS = ("slow", "mid", "fast")  # BANDS' bands by short name (the three stores' scores)


def band(expected_units: float) -> str:
    return next(name for limit, name in BANDS if expected_units < limit)


def band_index(expected_units: np.ndarray) -> np.ndarray:
    """Each product's band as an index into BANDS (and SELLERS)."""
    limits = [limit for limit, _ in BANDS[:-1]]
    return np.searchsorted(limits, np.asarray(expected_units, dtype=np.float64), side="right")


@dataclass
class Score:
    name: str
    days: int
    tp: int = 0
    fp: int = 0
    fn: int = 0
    by_band: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def false_alarms_per_day(self) -> float:
        return self.fp / self.days if self.days else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.name,
            "days": self.days,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "false_alarms_per_day": round(self.false_alarms_per_day, 3),
            "by_band": self.by_band,
        }


def score(
    name: str,
    detected: dict[date, set[int]],
    truth: dict[date, set[int]],
    band_of: Callable[[int], str],
) -> Score:
    """TP/FP/FN of `detected` against `truth` over the days of `detected`."""
    result = Score(name, days=len(detected))
    for _, label in BANDS:
        result.by_band[label] = {"tp": 0, "fp": 0, "fn": 0}
    for day, found in detected.items():
        real = truth.get(day, set())
        for pid, kind in (
            [(p, "tp") for p in found & real]
            + [(p, "fp") for p in found - real]
            + [(p, "fn") for p in real - found]
        ):
            setattr(result, kind, getattr(result, kind) + 1)
            result.by_band[band_of(pid)][kind] += 1
    return result


def _enriched(order: dict[str, Any], prices: dict[int, int]) -> dict[str, Any]:
    items = []
    for line in order["items"]:
        p, q = line["product_id"], line["quantity"]
        items.append(
            {
                "product_id": p,
                "name": f"Product {p}",
                "category": CATEGORIES[p % len(CATEGORIES)],
                "unit_price": prices[p] / 100,
                "quantity": q,
                "line_total": prices[p] * q / 100,
            }
        )
    return {
        "order_id": order["order_id"],
        "created_at": datetime.fromisoformat(order["created_at"]),
        "customer": {"id": order["customer_id"]},
        "items": items,
    }


def simulate(
    store: Store,
    zone: ZoneInfo,
    *,
    products: int,
    orders_per_day: float,
    first: date,
    days: int,
    spikes: int,
    seed: int,
    quiet_days: int = 14,
    surge: float | None = None,
    report: Callable[[str], None] = lambda _: None,
) -> DemandModel:
    """Writes `days` simulated business days from `first` into the rollups the detector reads;
    returns the model (its `spikes` are the ground truth; none in the first `quiet_days`). With
    `surge`, the last day without an injected spike is a store-wide surge of that factor
    (`model.surges`: a store event to find)."""
    tz = zone
    store.rollups.ensure_layout(zone)
    ids = np.arange(1, products + 1, dtype=np.int64)
    model = DemandModel(ids, np.arange(1, 20_001, dtype=np.int64), orders_per_day, seed, zone.key)
    span = [first + timedelta(days=i) for i in range(days)]
    model.spikes = plan_spikes(ids, span[quiet_days:], spikes, seed)
    if surge is not None:
        spiked = {s.day for s in model.spikes}
        model.surges = {next(d for d in reversed(span) if d not in spiked): surge}
    rng = np.random.default_rng([seed, 3])
    prices = {int(p): int(rng.integers(199, 19_999)) for p in ids}
    writer = store.rollups.writer()
    for day in span:
        start, end = day_bounds(day, tz)
        orders = [_enriched(o, prices) for o in model.generate(start, end)]
        deltas = order_deltas(orders, tz)
        wanted = {k: v for k, v in deltas.items() if k[0] in (DAY_PRODUCT, HOUR)}
        writer.apply(f"simulated:{day.isoformat()}", wanted)
        report(f"simulated {day}: {len(orders):,} orders")
    return model


def truth_of(spikes: Iterable[Spike]) -> dict[date, set[int]]:
    truth: dict[date, set[int]] = {}
    for s in spikes:
        truth.setdefault(s.day, set()).add(s.product_id)
    return truth


def evaluate(
    store: Store,
    zone: ZoneInfo,
    first: date,
    last: date,
    rules: dict[str, Rule],
    report: Callable[[str], None] = lambda _: None,
) -> dict[str, dict[date, set[int]]]:
    """Each rule's spikes on each day of [first, last] (the history loaded once, by a real
    run of the first rule, which also stores its spikes)."""
    lookback = max(r.lookback_days for r in rules.values())
    base = next(iter(rules.values()))
    run(store, first, last, zone, Rule(**{**base.as_document(), "lookback_days": lookback}),
        report=report)  # fmt: skip
    history = store.demand.read_history(first - timedelta(days=lookback), last)
    demands = [
        store.demand.stored_day(first + timedelta(days=i)) for i in range((last - first).days + 1)
    ]
    found: dict[str, dict[date, set[int]]] = {name: {} for name in rules}
    for name, rule in rules.items():
        seen = replace(history, store_events={})  # each rule finds its own store events
        for demand in demands:
            result = detect(seen, demand, rule)
            if result.store["event"]:
                seen.store_events[demand.day] = result.store["level"]
            found[name][demand.day] = {s["product_id"] for s in result.spikes}
    return found
