"""The spike detector's benchmarks: its quality on three simulated stores and against the
simulator's injected spikes, and the time of one day's run over 10,000 products x 365 days.

Stores (`stores`, pure: no database): the three stores of `shopstream.spikes.stores.STORES`
(300, 3,000 and 30,000 orders a day), each over `seeds` seeds, every judged day detected by
each of `STORE_RULES` with the detector's `detect`, scored against the injected spikes
(precision, recall by band, false alarms per day per 1,000 products, the store-wide surge day,
recall of the spikes an oracle can see).

Model (`quality`): the simulator's demand model over N days (written through the rollup
writer: `shopstream.spikes.quality.simulate`), every day detected by each rule variant, scored
against the injected spikes (precision, recall, false alarms per day, by volume band).

Scale (`scale`): the per-day product rollups for D days x P products (Poisson demand, through
the job's rollup writer), a backfill loads them into the history, then one day's run is timed
(the CLI's `run`: read the day's rollups, store its demand and history, read the lookback,
apply the rule, store the spikes) for 10,000 and, as the same-run baseline, 1,000 products.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from rich import box
from rich.table import Table

from shopstream.domain.rollups import DAY_PRODUCT, Delta, Deltas
from shopstream.spikes.detector import run
from shopstream.spikes.quality import SELLERS, band, evaluate, score, simulate, truth_of
from shopstream.spikes.rule import Rule
from shopstream.spikes.stores import (
    STORES,
    SimulatedStore,
    StoreScore,
    StoreSpec,
    detectable,
    score_store,
    score_with_labels,
    simulate_store,
)
from shopstream.store.protocols import Store

__all__ = [
    "ORACLE_ALPHA",
    "STORE_RULES",
    "VARIANTS",
    "quality",
    "scale",
    "store_specs",
    "stores",
    "stores_table",
]

Report = Callable[[str], None]

# issue 9's rule and its variants: no noise test, no store events (what their names say)
_BASE: dict[str, Any] = {
    "lookback_days": 90, "min_history_days": 14, "min_units": 5, "alpha": 0, "store_margin": 0,
}  # fmt: skip
VARIANTS = {
    "P95 as written (margin 1, K 5)": Rule(**_BASE, min_orders=0, margin=1.0, weekday=False),
    "margin 1.5": Rule(**_BASE, min_orders=0, margin=1.5, weekday=False),
    "margin 1.5, weekday": Rule(**_BASE, min_orders=0, margin=1.5, weekday=True),
    "margin 1.75, weekday": Rule(**_BASE, min_orders=0, margin=1.75, weekday=True),
    "margin 1.6, min orders 16": Rule(**_BASE, min_orders=16, margin=1.6, weekday=False),
    "issue 9's default: margin 1.6, weekday, min orders 16": Rule(
        **_BASE, min_orders=16, margin=1.6
    ),
    "margin 1.75, weekday, min orders 16": Rule(**_BASE, min_orders=16, margin=1.75),
    "margin 1.75, weekday, min orders 12": Rule(**_BASE, min_orders=12, margin=1.75),
    "default: margin 1.3, weekday, noise test a=3e-5, store events": Rule(),
}

STORE_RULES = {
    "today (issue 9): P95x1.6, >=16 orders": Rule(
        margin=1.6, min_orders=16, alpha=0, store_margin=0
    ),
    "default: noise test a=3e-5 + store events": Rule(),
    "a=1e-4": Rule(alpha=1e-4),
    "default, no store events": Rule(store_margin=0),
}
ORACLE_ALPHA = 1e-4  # what "detectable" means: the true distribution's tail below this


def store_specs(names: Sequence[str]) -> list[StoreSpec]:
    """The `STORES` named, in their order (ValueError for an unknown name)."""
    known = {spec.name for spec in STORES}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"unknown store(s) {unknown}; known: {', '.join(sorted(known))}")
    return [spec for spec in STORES if spec.name in names]


def stores(seeds: int, specs: Sequence[StoreSpec], report: Report) -> dict[str, Any]:
    """`STORE_RULES` on each store of `specs`, seeds 0 .. seeds - 1 each."""
    out: dict[str, Any] = {"seeds": seeds, "oracle_alpha": ORACLE_ALPHA, "stores": []}
    for spec in specs:
        totals: dict[str, StoreScore] = {}
        labelled: dict[str, StoreScore] = {}
        labels = {"expected": 0, "wrong": 0}
        datasets = []
        for seed in range(seeds):
            started = time.monotonic()
            sim = simulate_store(spec, seed)
            simulated_s = time.monotonic() - started
            scores = score_store(sim, STORE_RULES, ORACLE_ALPHA)
            data = _dataset(sim, simulated_s, time.monotonic() - started - simulated_s)
            datasets.append(data)
            report(
                f"{spec.name} seed {seed}: {data['orders_per_day']:,.0f} orders a day, "
                f"{data['injected_spikes']} spikes ({data['detectable']} detectable); "
                f"simulated in {simulated_s:.1f} s, {len(scores)} rules scored in "
                f"{data['scored_s']:.1f} s"
            )
            for name, s in scores.items():
                totals[name] = totals[name].add(s) if name in totals else s
            before, after, given = score_with_labels(sim, Rule(), ORACLE_ALPHA)
            for name, s in (("before", before), ("after", after)):
                labelled[name] = labelled[name].add(s) if name in labelled else s
            labels = {k: labels[k] + given[k] for k in labels}
        out["stores"].append(
            {
                "store": spec.name,
                "orders_per_day": spec.orders_per_day,
                "products": spec.products,
                "datasets": datasets,
                "rules": [
                    {**totals[name].as_dict(), "parameters": rule.as_document()}
                    for name, rule in STORE_RULES.items()
                ],
                # the default rule on the second half of the judged days, before and after a
                # reviewer labelled the first half's alarms (`score_with_labels`)
                "labels": {
                    "given": labels,
                    **{name: _short(s) for name, s in labelled.items()},
                },
            }
        )
        before, after = labelled["before"], labelled["after"]
        report(
            f"{spec.name}, labels ({labels['expected']} expected, {labels['wrong']} wrong): "
            f"second half P {before.precision:.3f} -> {after.precision:.3f}, "
            f"R {before.recall():.3f} -> {after.recall():.3f}, false alarms "
            f"{before.false_alarms:.3f} -> {after.false_alarms:.3f} a day per 1,000"
        )
    return out


def _short(s: StoreScore) -> dict[str, Any]:
    return {
        "tp": sum(s.tp),
        "fp": sum(s.fp),
        "fn": sum(s.fn),
        "precision": round(s.precision, 4),
        "recall": round(s.recall(), 4),
        "false_alarms_per_day_per_1000": round(s.false_alarms, 4),
        "recall_of_detectable": round(s.recall_of_detectable, 4),
    }


def _dataset(sim: SimulatedStore, simulated_s: float, scored_s: float) -> dict[str, Any]:
    """What one seed's store looked like."""
    h = sim.history
    spiked = np.array([i for i, _ in sim.spikes], dtype=np.int64)
    by_band = np.bincount(sim.bands[spiked], minlength=3) if spiked.size else np.zeros(3, int)
    products = np.bincount(sim.bands, minlength=3)
    return {
        "seed": sim.seed,
        "days": sim.days,
        "store_units_per_day": round(float(h.store_units.mean()), 1),
        "orders_per_day": round(sim.orders_per_day, 1),
        "products_by_band": dict(zip(SELLERS, products.tolist(), strict=True)),
        "injected_spikes": len(sim.spikes),
        "injected_by_band": dict(zip(SELLERS, by_band.tolist(), strict=True)),
        "detectable": int(detectable(sim, ORACLE_ALPHA).sum()),
        "simulated_s": round(simulated_s, 2),
        "scored_s": round(scored_s, 2),
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


_ROWS = (
    "precision",
    "recall",
    *(f"recall {name}" for name in SELLERS),
    "false alarms /d/1k",
    "surge store event",
    "false store events",
    "surge day alarms",
    "R of detectable",
)


def _column(rule: dict[str, Any]) -> list[str]:
    """A rule's cells, in `_ROWS`' order ("-": the rule has no store events)."""
    events = bool(rule["parameters"]["store_margin"])
    return [
        _fmt(rule["precision"]),
        _fmt(rule["recall"]),
        *(_fmt(rule["by_band"][name]["recall"]) for name in SELLERS),
        _fmt(rule["false_alarms_per_day_per_1000"]),
        f"{rule['surge_day_store_events']}/{rule['seeds']}" if events else "-",
        str(rule["false_store_events"]) if events else "-",
        str(rule["surge_day_product_alarms"]),
        _fmt(rule["recall_of_detectable"]),
    ]


def stores_table(store: dict[str, Any], oracle_alpha: float) -> Table:
    """One store's scores, a column per rule (fits 80 columns)."""
    data = store["datasets"]
    table = Table(
        title=f"{store['store']}: {store['products']:,} products, "
        f"{store['orders_per_day']:,.0f} orders a day, {len(data)} seeds, "
        f"{sum(d['injected_spikes'] for d in data):,} spikes "
        f"({sum(d['detectable'] for d in data):,} detectable)",
        caption="false alarms a day per 1,000 products; detectable: an oracle's test on the "
        f"true distribution of orders at {oracle_alpha:g} sees it",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("", no_wrap=True)
    for rule in store["rules"]:
        table.add_column(rule["rule"].split(":")[0], justify="right")
    columns = [_column(rule) for rule in store["rules"]]
    for label, *cells in zip(_ROWS, *columns, strict=True):
        table.add_row(label, *cells)
    return table


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
    # a backfill of detection: the last 90 days in one run (the history already loaded)
    started = time.monotonic()
    results = run(store, last - timedelta(days=89), last, zone, Rule(), report=lambda _: None)
    backfill_s = time.monotonic() - started
    detection = {
        "days": len(results),
        "seconds": round(backfill_s, 1),
        "per_day_s": round(backfill_s / len(results), 3),
        "spikes": sum(r.spikes for r in results),
        "store_events": sum(r.store_event for r in results),
    }
    report(f"{products:,} products, 90 days of detection in one run: {detection}")
    return {
        "products": products,
        "history_days": days,
        "rollups_written_s": round(written_s, 1),
        "history_loaded_s": round(loaded_s, 1),
        "one_day_run": runs,
        "detection_backfill_90_days": detection,
        "at": datetime.now(UTC).isoformat(),
    }
