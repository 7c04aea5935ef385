"""`shopstream spikes run`: a day's (or a range's) demand, then its spikes.

For each day D: its demand is read from the rollups and stored (`store.demand_history`); the history
of the `lookback_days` before D is loaded too where it is missing (a first run needs no
separate backfill); the rule (`spikes.rule`) runs over every product at once; and D's spikes
replace what `demand_spikes` held for D (a rerun gives the same result, a day without spikes
clears stale ones).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from shopstream.failpoints import failpoint
from shopstream.spikes.rule import Rule, Verdicts, evaluate, history_matrix, weekday_factors
from shopstream.store.protocols import Store
from shopstream.store.records import DayDemand, History

__all__ = ["DayResult", "Window", "detect", "ratio_value", "run", "window"]

log = logging.getLogger(__name__)

Report = Callable[[str], None]


@dataclass(frozen=True)
class DayResult:
    day: date
    products: int  # products with a history (known before or sold on D)
    eligible: int  # of which with enough history
    units: int
    spikes: int


@dataclass
class Window:
    """A day's view of the history: the lookback's days, oldest first, and day D."""

    units: np.ndarray  # (N,) units on D
    history: np.ndarray  # (N, L) NaN where a day does not count
    weekdays: np.ndarray  # (L,)
    weekday: int
    factors: np.ndarray  # (7,)
    start: date


def window(history: History, day: date, rule: Rule) -> Window:
    """The rule's inputs for day D: D's units and the zero-filled history of the lookback
    days before it (NaN before each product's first sale and on days never loaded)."""
    c = history.column(day)
    lo = c - rule.lookback_days
    if lo < 0:
        raise ValueError(f"the history read starts after {day - timedelta(rule.lookback_days)}")
    start = history.day_of(lo)
    firsts = np.array(
        [
            (history.first_sale[int(p)] - start).days if int(p) in history.first_sale else 10**9
            for p in history.product_ids
        ],
        dtype=np.int64,
    )
    hist = history_matrix(history.units[:, lo:c], np.maximum(firsts, 0))
    loaded = history.loaded[lo:c]
    hist[:, ~loaded] = np.nan
    weekdays = np.array([(start + timedelta(days=i)).weekday() for i in range(c - lo)])
    # the store's weekly shape from the days it sold anything (not the days before it opened,
    # which are loaded as zeros, nor a store-wide outage)
    selling = loaded & (history.store_units[lo:c] > 0)
    factors = weekday_factors(history.store_units[lo:c][selling], weekdays[selling])
    return Window(
        units=history.units[:, c].astype(np.float64),
        history=hist,
        weekdays=weekdays,
        weekday=day.weekday(),
        factors=factors,
        start=start,
    )


def ratio_value(value: float) -> float | None:
    """A ratio for a document: rounded, None for an infinite one (a P95 of 0)."""
    return round(float(value), 4) if np.isfinite(value) else None


def detect(
    history: History, demand: DayDemand, rule: Rule
) -> tuple[list[dict[str, Any]], Verdicts]:
    """Day D's spikes (as stored in `demand_spikes`), strongest first, and every verdict."""
    w = window(history, demand.day, rule)
    sold = {p["product_id"]: p for p in demand.products}
    orders = np.array([sold.get(int(p), {}).get("orders", 0) for p in history.product_ids])
    verdicts = evaluate(
        w.units, w.history, rule,
        history_weekdays=w.weekdays, weekday=w.weekday, factors=w.factors, orders=orders,
    )  # fmt: skip
    spikes = []
    for i in np.flatnonzero(verdicts.spike):
        pid = int(history.product_ids[i])
        product = sold.get(pid, {})
        p95 = float(verdicts.p95[i])
        raw = w.history[i]
        spikes.append(
            {
                "product_id": pid,
                "name": product.get("name"),
                "category": product.get("category"),
                "day": demand.day.isoformat(),
                "units": int(w.units[i]),
                "orders": int(product.get("orders", 0)),
                "revenue": product.get("revenue", 0.0),
                "p95": round(p95, 4),
                "threshold": round(rule.margin * p95, 4),
                "ratio": None
                if not np.isfinite(verdicts.ratio[i])
                else round(float(verdicts.ratio[i]), 4),
                "history_days": int(verdicts.history_days[i]),
                "history_start": w.start.isoformat(),
                "history": [None if np.isnan(v) else int(v) for v in raw],
            }
        )
    spikes.sort(key=lambda s: (-(s["ratio"] or float("inf")), s["product_id"]))
    return spikes, verdicts


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def run(
    store: Store,
    first: date,
    last: date,
    zone: ZoneInfo,
    rule: Rule,
    report: Report = log.info,
    chunk_days: int = 31,
    lease_ttl_s: float = 30.0,
) -> list[DayResult]:
    """Detects the spikes of business days [first, last] of the business timezone `zone`
    (see the module's docstring), holding the demand history's lease (`lease_ttl_s`: how soon
    the lease of a run that died frees)."""
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    results: list[DayResult] = []
    with store.leases.hold(ttl_s=lease_ttl_s) as held:
        start = first - timedelta(days=rule.lookback_days)
        have = store.demand.loaded_days(start, first - timedelta(days=1))
        missing = [d for d in _days(start, first - timedelta(days=1)) if d not in have]
        todo = missing + _days(first, last)
        demands: dict[date, DayDemand] = {}  # the last chunk's (a long range is re-read)
        for i in range(0, len(todo), chunk_days):
            part = [store.demand.read_day(d, zone) for d in todo[i : i + chunk_days]]
            store.demand.load_days(part, zone)
            demands = {d.day: d for d in part if d.day >= first}
            held.renew()
            report(
                f"demand loaded: {part[0].day} .. {part[-1].day} ({i + len(part)}/{len(todo)} days)"
            )
        history = store.demand.read_history(start, last)
        for day in _days(first, last):
            demand = demands.get(day) or store.demand.stored_day(day)
            spikes, verdicts = detect(history, demand, rule)
            _store_spikes(store, day, spikes, rule, verdicts, zone.key)
            failpoint("spikes.day_stored")
            eligible = int(np.sum(verdicts.history_days >= rule.min_history_days))
            results.append(
                DayResult(day, len(history.product_ids), eligible, demand.units, len(spikes))
            )
            held.renew()
            report(f"{day}: {len(spikes)} spikes among {eligible} products with history")
    return results


def _store_spikes(
    store: Store,
    day: date,
    spikes: list[dict[str, Any]],
    rule: Rule,
    verdicts: Verdicts,
    timezone: str,
) -> None:
    iso = day.isoformat()
    doc = {
        "_id": iso,
        "day": iso,
        "timezone": timezone,
        "spikes": spikes,
        "count": len(spikes),
        "rule": rule.as_document(),
        "products_evaluated": int(np.sum(verdicts.history_days >= rule.min_history_days)),
        "detected_at": datetime.now(UTC),
    }
    store.spikes.write_day(iso, doc)
