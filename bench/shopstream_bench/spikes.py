"""The spike detector's benchmarks: its quality against the simulator's injected spikes, and
the time of one day's run over 10,000 products x 365 days of history.

Quality (`quality`): the simulator's demand model over N days (written through the rollup
writer: `shopstream.spikes.quality.simulate`), every day detected by each rule variant, scored
against the injected spikes (precision, recall, false alarms per day, by volume band).

Scale (`scale`): the per-day product rollups for D days x P products (Poisson demand, through
the job's rollup writer), a backfill loads them into the history, then one day's run is timed
(the CLI's `run`: read the day's rollups, store its demand and history, read the lookback,
apply the rule, store the spikes) for 10,000 and, as the same-run baseline, 1,000 products.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from shopstream.domain.rollups import DAY_PRODUCT, Delta, Deltas
from shopstream.spikes.detector import run
from shopstream.spikes.quality import band, evaluate, score, simulate, truth_of
from shopstream.spikes.rule import Rule
from shopstream.store.protocols import Store

__all__ = ["VARIANTS", "quality", "scale"]

Report = Callable[[str], None]

_BASE: dict[str, Any] = {"lookback_days": 90, "min_history_days": 14, "min_units": 5}
VARIANTS = {
    "P95 as written (margin 1, K 5)": Rule(**_BASE, min_orders=0, margin=1.0, weekday=False),
    "margin 1.5": Rule(**_BASE, min_orders=0, margin=1.5, weekday=False),
    "margin 1.5, weekday": Rule(**_BASE, min_orders=0, margin=1.5, weekday=True),
    "margin 1.75, weekday": Rule(**_BASE, min_orders=0, margin=1.75, weekday=True),
    "margin 1.6, min orders 16": Rule(**_BASE, min_orders=16, margin=1.6, weekday=False),
    "default: margin 1.6, weekday, min orders 16": Rule(**_BASE),
    "margin 1.75, weekday, min orders 16": Rule(**_BASE, min_orders=16, margin=1.75),
    "margin 1.75, weekday, min orders 12": Rule(**_BASE, min_orders=12, margin=1.75),
}


def quality(
    store: Store,
    zone: ZoneInfo,
    *,
    products: int,
    orders_per_day: float,
    days: int,
    spikes: int,
    seed: int,
    report: Report,
) -> dict[str, Any]:
    first = date(2026, 1, 5)  # a Monday; the dates do not matter
    started = time.monotonic()
    model = simulate(
        store, zone, products=products, orders_per_day=orders_per_day, first=first,
        days=days, spikes=spikes, seed=seed, report=report,
    )  # fmt: skip
    simulated_s = time.monotonic() - started
    truth = truth_of(model.spikes)
    expected = {int(p): model.expected_units(int(p), first) for p in model.products}
    judged = (first + timedelta(days=14), first + timedelta(days=days - 1))
    started = time.monotonic()
    found = evaluate(store, zone, judged[0], judged[1], VARIANTS, report=report)
    detected_s = time.monotonic() - started
    bands: dict[str, int] = {}
    for s in model.spikes:
        bands[band(expected[s.product_id])] = bands.get(band(expected[s.product_id]), 0) + 1
    return {
        "dataset": {
            "products": products,
            "orders_per_day": orders_per_day,
            "days": days,
            "judged_days": (judged[1] - judged[0]).days + 1,
            "injected_spikes": len(model.spikes),
            "injected_by_band": bands,
            "seed": seed,
            "simulated_s": round(simulated_s, 1),
            "detected_s": round(detected_s, 1),
        },
        "rules": [
            {
                **score(name, found[name], truth, lambda p: band(expected[p])).as_dict(),
                "parameters": VARIANTS[name].as_document(),
            }
            for name in VARIANTS
        ],
    }


def _write_rollups(
    store: Store, products: int, first: date, days: int, seed: int, report: Report
) -> None:
    rng = np.random.default_rng(seed)
    rates = rng.gamma(0.6, 12.0, products)  # a long tail of slow sellers, a few fast ones
    writer = store.rollups.writer(cache_size=0)
    for i in range(days):
        day = (first + timedelta(days=i)).isoformat()
        units = rng.poisson(rates)
        deltas: Deltas = {}
        for pid in np.flatnonzero(units) + 1:
            u = int(units[pid - 1])
            labels = {"day": day, "product_id": int(pid), "name": f"Product {pid}",
                      "category": "Bench"}  # fmt: skip
            counts = Counter(orders=u, units=u, sales_cents=u * 999)
            deltas[(DAY_PRODUCT, f"{day}|{pid}")] = Delta(labels, counts)
        writer.apply(f"bench:{day}", deltas)
        if i % 30 == 0:
            report(f"rollups: {day} ({i + 1}/{days} days, {products:,} products)")


def scale(store: Store, products: int, days: int, zone: ZoneInfo, report: Report) -> dict[str, Any]:
    """One day's run after `days` days of history of `products` products."""
    store.rollups.ensure_layout(zone)
    first = date(2025, 6, 1)
    last = first + timedelta(days=days)
    started = time.monotonic()
    _write_rollups(store, products, first, days + 1, seed=products, report=report)
    written_s = time.monotonic() - started
    backfill = Rule(lookback_days=1, min_history_days=1)  # loads each day once
    started = time.monotonic()
    run(store, first + timedelta(days=1), last - timedelta(days=1), zone, backfill,
        report=lambda _: None, chunk_days=61)  # fmt: skip
    loaded_s = time.monotonic() - started
    runs = {}
    for lookback in (90, days):
        rule = Rule(lookback_days=lookback)
        times = []
        for _ in range(3):
            started = time.monotonic()
            results = run(store, last, last, zone, rule, report=lambda _: None)
            times.append(time.monotonic() - started)
        runs[f"lookback {lookback}"] = {
            "seconds": [round(t, 2) for t in times],
            "median_s": round(sorted(times)[1], 2),
            "products": results[0].products,
            "spikes": results[0].spikes,
        }
        report(f"{products:,} products, lookback {lookback}: {runs[f'lookback {lookback}']}")
    return {
        "products": products,
        "history_days": days,
        "rollups_written_s": round(written_s, 1),
        "history_loaded_s": round(loaded_s, 1),
        "one_day_run": runs,
        "at": datetime.now(UTC).isoformat(),
    }
