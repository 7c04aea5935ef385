"""Today's emerging spikes: the daily rule applied to cumulative units so far (provisional).

At local time t of business day D, a product is emerging when its units so far (the stream's
`rollup_day_product` for D: exact, live) exceed `margin` times the P95 of its cumulative units
up to t on the history days, and its orders so far are unlikely under its own noise (the daily
rule's test, the expected orders being the history days' orders by t). A history day's
cumulative units (orders) up to t are that day's units (orders) times the share of the store's
units sold by t on that day (its `hours`, interpolated within the hour): products are taken to
share the store's intraday shape, so no per-product hourly history has to be stored
(docs/spikes.md). The floors and the weekday-aware baseline are the daily rule's; every
baseline is scaled by the store's level so far (`store_level`), event or not.

`emerging_spikes` `"2026-11-28"` holds the day's emerging spikes; a product keeps the time it
first crossed (`crossed_at`) through later refreshes, and `above` says whether it still is.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from shopstream.domain.clock import day_bounds
from shopstream.spikes.detector import Window, expected_days, ratio_value, window
from shopstream.spikes.rule import Rule, evaluate
from shopstream.store.protocols import Store
from shopstream.store.records import History

__all__ = ["elapsed_share", "refresh", "store_level"]


def elapsed_share(hours: np.ndarray, at_hours: float) -> np.ndarray:
    """The share of each day's units sold in its first `at_hours` local hours (rows of
    `hours`: units by local hour), interpolating within the current hour; NaN for a day
    without sales."""
    hours = np.asarray(hours, dtype=np.float64)
    whole = int(min(max(at_hours, 0.0), 24.0))
    done = hours[:, :whole].sum(axis=1)
    if whole < 24:
        done = done + hours[:, whole] * (at_hours - whole)
    total = hours.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, done / total, np.nan)


def store_level(so_far: float, store_by_now: np.ndarray, w: Window, rule: Rule) -> float:
    """Today's store units so far against the history days' at the same time (weekday-adjusted
    like the rule): the baseline scales with it, so a store-wide surge (a campaign; a demo's
    live traffic far above its backfilled history) does not make every product emerge, and a
    product emerges when it outgrows the store. 1.0 without a usable history."""
    counted = np.isfinite(store_by_now) & (store_by_now > 0)
    if not counted.any() or so_far <= 0:
        return 1.0
    scale = np.ones(len(store_by_now))
    if rule.weekday:
        scale = w.factors[w.weekday] / w.factors[w.weekdays]
    expected = float(np.mean((store_by_now * scale)[counted]))
    return so_far / expected if expected > 0 else 1.0


def refresh(store: Store, at: datetime, zone: ZoneInfo, rule: Rule) -> dict[str, Any]:
    """Recomputes the emerging spikes of `at`'s business day (in `zone`) as of `at`; returns
    the stored document."""
    day = at.astimezone(zone).date()
    start, _ = day_bounds(day, zone)
    at_hours = (at.astimezone(UTC) - start).total_seconds() / 3600
    lookback = (day - timedelta(days=rule.lookback_days), day - timedelta(days=1))
    history = store.demand.read_history(
        *lookback, orders_from=day - timedelta(days=rule.test_window)
    )
    history.store_events = {
        date.fromisoformat(d): level for d, level in store.spikes.store_events().items()
    }  # surges the daily run found: left out of the baselines as there
    history.excluded = expected_days(store)
    today = store.demand.read_day(day, zone)
    so_far = {p["product_id"]: p for p in today.products}
    history = _with_today(history, day, so_far)
    w = window(history, day, rule)
    share = elapsed_share(history.store_hours[: rule.lookback_days], at_hours)
    level = store_level(today.units, history.store_units[: rule.lookback_days] * share, w, rule)
    cumulative = w.history * share[None, :] * level
    verdicts = evaluate(
        w.units, cumulative, rule,
        history_weekdays=w.weekdays, weekday=w.weekday, factors=w.factors, orders=w.orders,
        orders_history=w.orders_history, orders_share=share * level,
    )  # fmt: skip
    iso = day.isoformat()
    previous = store.spikes.emerging(iso)
    before = {s["product_id"]: s for s in (previous.spikes if previous else [])}
    spikes: dict[int, dict[str, Any]] = {}
    for i in range(len(history.product_ids)):
        pid = int(history.product_ids[i])
        if not verdicts.spike[i] and pid not in before:
            continue
        product = so_far.get(pid, {})
        earlier = before.get(pid, {})
        p95 = float(verdicts.p95[i]) if np.isfinite(verdicts.p95[i]) else None
        spikes[pid] = {
            "product_id": pid,
            "name": product.get("name", earlier.get("name")),
            "category": product.get("category", earlier.get("category")),
            "units": int(w.units[i]),
            "orders": int(w.orders[i]),
            "orders_expected": None
            if not np.isfinite(verdicts.expected_orders[i])
            else round(float(verdicts.expected_orders[i]), 4),
            "p_value": None
            if not np.isfinite(verdicts.p_value[i])
            else float(f"{verdicts.p_value[i]:.4g}"),
            "p95": None if p95 is None else round(p95, 4),
            "threshold": None if p95 is None else round(rule.margin * p95, 4),
            "ratio": ratio_value(verdicts.ratio[i]),
            "history_days": int(verdicts.history_days[i]),
            "above": bool(verdicts.spike[i]),
            "crossed_at": earlier.get("crossed_at", at),
            "units_at_cross": earlier.get("units_at_cross", int(w.units[i])),
        }
    doc = {
        "_id": iso,
        "day": iso,
        "timezone": zone.key,
        "as_of": at,
        "local_time": at.astimezone(zone).strftime("%H:%M"),
        "provisional": True,
        "spikes": sorted(spikes.values(), key=lambda s: (s["crossed_at"], s["product_id"])),
        "count": sum(1 for s in spikes.values() if s["above"]),
        "store_level": round(level, 4),  # today's store units so far / a usual day's by now
        "rule": rule.as_document(),
        "refreshed_at": datetime.now(UTC),
    }
    store.spikes.write_emerging(iso, doc)
    return doc


def _with_today(history: History, day: date, so_far: dict[int, dict[str, Any]]) -> History:
    """The history with one more column: today's units so far (products new today added)."""
    ids = [int(p) for p in history.product_ids]
    extra = sorted(set(so_far) - set(ids))
    all_ids = np.array(ids + extra, dtype=np.int64)
    units = np.zeros((len(all_ids), history.days + 1), dtype=np.int64)
    units[: len(ids), : history.days] = history.units
    orders = np.zeros_like(units)
    if history.orders is not None:
        orders[: len(ids), : history.days] = history.orders
    index = {p: i for i, p in enumerate(all_ids.tolist())}
    for pid, product in so_far.items():
        units[index[pid], history.days] = product["units"]
        orders[index[pid], history.days] = product.get("orders", 0)
    firsts = dict(history.first_sale)
    for pid in extra:
        firsts.setdefault(pid, day)
    return History(
        start=history.start,
        product_ids=all_ids,
        units=units,
        loaded=np.append(history.loaded, True),
        store_units=np.append(history.store_units, 0),
        store_hours=np.vstack([history.store_hours, np.zeros((1, 24), dtype=np.int64)]),
        first_sale=firsts,
        orders=orders,
        orders_from=history.orders_from or day,
        store_events=dict(history.store_events),
        excluded=history.excluded,
    )
