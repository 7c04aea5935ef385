"""`shopstream spikes run`: a day's (or a range's) demand, then its spikes.

For each day D: its demand is read from the rollups and stored (`store.demand_history`); the history
of the `lookback_days` before D is loaded too where it is missing (a first run needs no
separate backfill); the store's level on D is measured (`rule.store_level`) and a day above
`store_margin` is a store event, every product then judged against its baseline times that
level and the day left out of later histories; the rule (`spikes.rule`) runs over every product
at once; and D's spikes replace what `demand_spikes` held for D (a rerun gives the same result,
a day without spikes clears stale ones).
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
from shopstream.spikes.nb import orders_needed
from shopstream.spikes.rule import (
    Rule,
    Verdicts,
    evaluate,
    history_matrix,
    store_level,
    usual_units,
    weekday_factors,
    weekday_scale,
)
from shopstream.store.protocols import Store
from shopstream.store.records import DayDemand, History

__all__ = [
    "DayResult",
    "Detection",
    "Window",
    "detect",
    "expected_days",
    "ratio_value",
    "run",
    "window",
]

log = logging.getLogger(__name__)

Report = Callable[[str], None]


@dataclass(frozen=True)
class DayResult:
    day: date
    products: int  # products with a history (known before or sold on D)
    eligible: int  # of which with enough history
    units: int
    spikes: int
    store_level: float = 1.0
    store_event: bool = False


@dataclass
class Window:
    """A day's view of the history: the lookback's days, oldest first, and day D."""

    units: np.ndarray  # (N,) units on D
    history: np.ndarray  # (N, L) NaN where a day does not count
    weekdays: np.ndarray  # (L,)
    weekday: int
    factors: np.ndarray  # (7,)
    start: date
    orders: np.ndarray  # (N,) orders on D
    orders_history: np.ndarray  # (N, L) NaN where a day does not count or was not read


def window(history: History, day: date, rule: Rule) -> Window:
    """The rule's inputs for day D: D's units and orders, and the zero-filled history of the
    lookback days before it (NaN before each product's first sale, on days never loaded, on
    earlier store-event days and on a product's days labelled expected; the orders NaN too
    before `history.orders_from`)."""
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
    firsts = np.maximum(firsts, 0)
    counted = history.loaded[lo:c].copy()
    for event in history.store_events:
        if lo <= history.column(event) < c:
            counted[history.column(event) - lo] = False
    hist = history_matrix(history.units[:, lo:c], firsts)
    hist[:, ~counted] = np.nan
    if history.orders is None and (rule.alpha or rule.min_orders):
        raise ValueError("the rule needs each product's daily orders: the history has none")
    counts = history.orders if history.orders is not None else np.zeros_like(history.units)
    orders_hist = history_matrix(counts[:, lo:c], firsts)
    orders_hist[:, ~counted] = np.nan
    if history.excluded:  # days labelled expected: out of that product's history
        row = {int(p): i for i, p in enumerate(history.product_ids)}
        for pid, days in history.excluded.items():
            for d in days:
                if pid in row and lo <= history.column(d) < c:
                    hist[row[pid], history.column(d) - lo] = np.nan
                    orders_hist[row[pid], history.column(d) - lo] = np.nan
    read_from = history.column(history.orders_from) if history.orders_from else c
    orders_hist[:, : max(0, min(read_from - lo, c - lo))] = np.nan
    weekdays = np.array([(start + timedelta(days=i)).weekday() for i in range(c - lo)])
    # the store's weekly shape from the days it sold anything (not the days before it opened,
    # which are loaded as zeros, nor a store-wide outage or surge)
    selling = counted & (history.store_units[lo:c] > 0)
    factors = weekday_factors(history.store_units[lo:c][selling], weekdays[selling])
    return Window(
        units=history.units[:, c].astype(np.float64),
        history=hist,
        weekdays=weekdays,
        weekday=day.weekday(),
        factors=factors,
        start=start,
        orders=counts[:, c].astype(np.float64),
        orders_history=orders_hist,
    )


def expected_days(store: Store) -> dict[int, set[date]]:
    """The days users labelled a product's spike `expected` (a promotion, a known event), by
    product: left out of its later histories."""
    days: dict[int, set[date]] = {}
    for label in store.spikes.labels():
        if label.label == "expected":
            days.setdefault(label.product_id, set()).add(date.fromisoformat(label.day))
    return days


def ratio_value(value: float) -> float | None:
    """A ratio for a document: rounded, None for an infinite one (a P95 of 0)."""
    return round(float(value), 4) if np.isfinite(value) else None


@dataclass
class Detection:
    """Day D's outcome: its spikes (as stored in `demand_spikes`, strongest first), the
    store's level and every product's verdict."""

    spikes: list[dict[str, Any]]
    store: dict[str, Any]  # level, event, products_used, margin
    verdicts: Verdicts


def detect(history: History, demand: DayDemand, rule: Rule) -> Detection:
    """Day D's store level, spikes and verdicts (the history must hold D and its lookback;
    D's units and orders are `history`'s column D, `demand` names the products)."""
    w = window(history, demand.day, rule)
    scale = weekday_scale(rule, w.history.shape[1], w.weekdays, w.weekday, w.factors)
    level, used = store_level(w.units, usual_units(w.history * scale[None, :], rule), rule)
    event = bool(rule.store_margin) and level > rule.store_margin
    store = {
        "level": round(level, 4),
        "event": event,
        "products_used": used,
        "margin": rule.store_margin,
    }
    verdicts = evaluate(
        w.units, w.history, rule,
        history_weekdays=w.weekdays, weekday=w.weekday, factors=w.factors,
        orders=w.orders, orders_history=w.orders_history, level=level if event else 1.0,
    )  # fmt: skip
    found = np.flatnonzero(verdicts.spike)
    needed = (
        orders_needed(verdicts.expected_orders[found], verdicts.shape[found], rule.alpha)
        if rule.alpha and found.size
        else np.zeros(found.size, dtype=np.int64)
    )
    sold = {p["product_id"]: p for p in demand.products}
    spikes = []
    for i, need in zip(found, needed, strict=True):
        pid = int(history.product_ids[i])
        product = sold.get(pid, {})
        p95 = float(verdicts.p95[i])
        tested = bool(rule.alpha)
        spikes.append(
            {
                "product_id": pid,
                "name": product.get("name"),
                "category": product.get("category"),
                "day": demand.day.isoformat(),
                "units": int(w.units[i]),
                "orders": int(w.orders[i]),
                "revenue": product.get("revenue", 0.0),
                "p95": round(p95, 4),
                "threshold": round(float(verdicts.threshold[i]), 4),
                "ratio": ratio_value(verdicts.ratio[i]),
                "store_level": round(level, 4) if event else 1.0,
                "orders_expected": round(float(verdicts.expected_orders[i]), 4) if tested else None,
                "dispersion": round(float(verdicts.shape[i]), 4) if tested else None,
                "p_value": float(f"{verdicts.p_value[i]:.4g}") if tested else None,
                "orders_needed": int(need) if tested else None,
                "history_days": int(verdicts.history_days[i]),
                "history_start": w.start.isoformat(),
                "history": [None if np.isnan(v) else int(v) for v in w.history[i]],
            }
        )
    spikes.sort(key=lambda s: (-(s["ratio"] or float("inf")), s["product_id"]))
    return Detection(spikes, store, verdicts)


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
        history = store.demand.read_history(
            start, last, orders_from=first - timedelta(days=rule.test_window)
        )
        # earlier runs' store events (the days of this range are decided again, in order)
        history.store_events = {
            date.fromisoformat(d): level
            for d, level in store.spikes.store_events().items()
            if date.fromisoformat(d) < first
        }
        history.excluded = expected_days(store)
        for day in _days(first, last):
            demand = demands.get(day) or store.demand.stored_day(day)
            found = detect(history, demand, rule)
            if found.store["event"]:
                history.store_events[day] = found.store["level"]
            _store_spikes(store, day, found, rule, zone.key)
            failpoint("spikes.day_stored")
            eligible = int(np.sum(found.verdicts.history_days >= rule.min_history_days))
            results.append(
                DayResult(
                    day,
                    len(history.product_ids),
                    eligible,
                    demand.units,
                    len(found.spikes),
                    found.store["level"],
                    found.store["event"],
                )
            )
            held.renew()
            event = (
                f"; store event: the whole store x{found.store['level']:.2f}"
                if found.store["event"]
                else ""
            )
            report(
                f"{day}: {len(found.spikes)} spikes among {eligible} products with history{event}"
            )
    return results


def _store_spikes(store: Store, day: date, found: Detection, rule: Rule, timezone: str) -> None:
    iso = day.isoformat()
    doc = {
        "_id": iso,
        "day": iso,
        "timezone": timezone,
        "spikes": found.spikes,
        "count": len(found.spikes),
        "store": found.store,
        "rule": rule.as_document(),
        "products_evaluated": int(np.sum(found.verdicts.history_days >= rule.min_history_days)),
        "detected_at": datetime.now(UTC),
    }
    store.spikes.write_day(iso, doc)
