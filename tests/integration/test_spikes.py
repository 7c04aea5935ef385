"""Demand spikes on the real store: daily demand from the stream's rollups, the day's spikes,
idempotent reruns, range backfills, stale spikes cleared, and today's emerging spikes."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pymongo.database import Database

from shopstream.config import Settings
from shopstream.domain.documents import (
    DAILY_DEMAND,
    DEMAND_HISTORY,
    DEMAND_SPIKES,
    EMERGING_SPIKES,
    SPIKE_DAYS_KEY,
    history_period,
    history_shard_key,
)
from shopstream.spikes.detector import run
from shopstream.spikes.intraday import refresh
from shopstream.spikes.rule import Rule
from shopstream.store.demand_history import decode_units, period_start
from tests.utils import fresh_database
from tests.utils.orders import order_doc, write_orders
from tests.utils.spikes import DAYS, FIRST, SPIKE_DAY, SPIKER, STEADY, at_local
from tests.utils.spikes import dataset as spike_dataset

TIMEZONE = "America/New_York"  # business days are not UTC days
TZ = ZoneInfo(TIMEZONE)
RULE = Rule(
    lookback_days=30, min_history_days=14, min_units=5, min_orders=0, margin=1.5, weekday=False
)


def _at(day: date, hour: int, minute: int = 30) -> datetime:
    return at_local(day, hour, minute, TZ)


def dataset() -> list[dict[str, Any]]:
    return spike_dataset(TZ)


def by_business_day(orders: list[dict[str, Any]]) -> dict[str, Counter[int]]:
    days: dict[str, Counter[int]] = {}
    for o in orders:
        day = o["created_at"].astimezone(TZ).date().isoformat()
        for item in o["items"]:
            days.setdefault(day, Counter())[item["product_id"]] += item["quantity"]
    return days


@pytest.fixture(scope="module")
def store(stack: Settings) -> Iterator[tuple[Database[dict[str, Any]], list[dict[str, Any]]]]:
    orders = dataset()
    with fresh_database(stack.mongo_url, "spikes") as db:
        write_orders(db, orders, TZ, TIMEZONE)
        yield db, orders


def _detect(db: Database[dict[str, Any]], first: date, last: date, rule: Rule = RULE) -> None:
    run(db, first, last, TZ, TIMEZONE, rule, report=lambda _: None)


def _without_times(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("detected_at", "computed_at")}


def test_daily_demand_and_spikes_of_a_day(store: Any) -> None:
    db, orders = store
    _detect(db, SPIKE_DAY, SPIKE_DAY)
    truth = by_business_day(orders)
    demand = db[DAILY_DEMAND].find_one({"_id": SPIKE_DAY.isoformat()})
    assert demand is not None
    got = {p["product_id"]: p["units"] for p in demand["products"]}
    assert got == dict(truth[SPIKE_DAY.isoformat()])
    revenue = {p["product_id"]: p["revenue_cents"] for p in demand["products"]}
    assert revenue == {p: u * (1000 + p) for p, u in got.items()}
    # the lookback's days were loaded on the way (a first run needs no separate backfill)
    for back in (1, 13, 29):
        day = (SPIKE_DAY - timedelta(days=back)).isoformat()
        doc = db[DAILY_DEMAND].find_one({"_id": day})
        assert doc is not None
        assert {p["product_id"]: p["units"] for p in doc["products"]} == dict(truth[day])
    shard = history_shard_key(history_period(SPIKE_DAY), SPIKER)
    history = db[DEMAND_HISTORY].find_one({"_id": shard})
    assert history is not None
    series = next(
        decode_units(e["units"]) for e in history["products"] if e["product_id"] == SPIKER
    )
    slot = (SPIKE_DAY - period_start(history_period(SPIKE_DAY))).days
    assert series[slot] == 60
    assert series[slot - 1] == truth[(SPIKE_DAY - timedelta(days=1)).isoformat()][SPIKER]

    spikes = db[DEMAND_SPIKES].find_one({"_id": SPIKE_DAY.isoformat()})
    assert spikes is not None
    assert [s["product_id"] for s in spikes["spikes"]] == [SPIKER]  # not the newcomer: 10 days
    spike = spikes["spikes"][0]
    assert spike["units"] == 60
    assert spike["category"] == "Kitchen"
    assert spike["name"] == f"Product {SPIKER}"
    assert spike["history_days"] == 30
    assert spike["p95"] <= 12
    assert spike["ratio"] == pytest.approx(60 / spike["p95"], rel=1e-3)
    assert len(spike["history"]) == 30
    assert spike["history"][-1] == truth[(SPIKE_DAY - timedelta(days=1)).isoformat()][SPIKER]
    assert spikes["rule"] == RULE.as_document()


def test_a_rerun_gives_the_same_result(store: Any) -> None:
    db, _ = store
    _detect(db, SPIKE_DAY, SPIKE_DAY)
    before = _without_times(db[DEMAND_SPIKES].find_one({"_id": SPIKE_DAY.isoformat()}))
    demand = _without_times(db[DAILY_DEMAND].find_one({"_id": SPIKE_DAY.isoformat()}))
    _detect(db, SPIKE_DAY, SPIKE_DAY)
    assert _without_times(db[DEMAND_SPIKES].find_one({"_id": SPIKE_DAY.isoformat()})) == before
    assert _without_times(db[DAILY_DEMAND].find_one({"_id": SPIKE_DAY.isoformat()})) == demand


def test_a_range_backfill_and_stale_spikes_cleared(store: Any) -> None:
    db, _ = store
    first = SPIKE_DAY - timedelta(days=2)
    _detect(db, first, SPIKE_DAY + timedelta(days=2))
    index = db[DEMAND_SPIKES].find_one({"_id": SPIKE_DAYS_KEY})
    assert index is not None
    for i in range(5):
        day = (first + timedelta(days=i)).isoformat()
        assert index["days"][day] == (1 if day == SPIKE_DAY.isoformat() else 0)
        assert db[DEMAND_SPIKES].find_one({"_id": day})["count"] == index["days"][day]
    # a stricter rule finds nothing on the day: its stored spikes are replaced, not kept
    _detect(db, SPIKE_DAY, SPIKE_DAY, Rule(**{**RULE.as_document(), "margin": 10.0}))
    doc = db[DEMAND_SPIKES].find_one({"_id": SPIKE_DAY.isoformat()})
    assert doc["spikes"] == []
    assert db[DEMAND_SPIKES].find_one({"_id": SPIKE_DAYS_KEY})["days"][SPIKE_DAY.isoformat()] == 0
    _detect(db, SPIKE_DAY, SPIKE_DAY)  # and back
    assert db[DEMAND_SPIKES].find_one({"_id": SPIKE_DAY.isoformat()})["count"] == 1


def test_emerging_spikes_of_today(store: Any) -> None:
    db, orders = store
    today = FIRST + timedelta(days=DAYS)  # the day after the dataset
    _detect(db, today - timedelta(days=1), today - timedelta(days=1))  # history up to yesterday
    rng = random.Random(3)
    morning = [order_doc(rng.randint(1, 50), _at(today, 1, 5), [(p, 3, 1000)]) for p in STEADY]
    rush = [order_doc(7, _at(today, 9, m), [(4, 5, 1000)]) for m in range(10, 50, 10)]
    write_orders(db, morning, TZ, TIMEZONE)
    first = refresh(db, _at(today, 8, 0), TZ, TIMEZONE, RULE)
    # at 08:00 products 1-5 have sold 3 each, a normal day's first quarter: nothing yet
    assert first["count"] == 0
    assert first["provisional"] is True
    write_orders(db, rush, TZ, TIMEZONE)
    second = refresh(db, _at(today, 10, 0), TZ, TIMEZONE, RULE)
    assert [(s["product_id"], s["above"]) for s in second["spikes"]] == [(4, True)]
    spike = second["spikes"][0]
    assert spike["units"] == 23  # against ~5 by 10:00 on a normal day
    assert spike["crossed_at"] == _at(today, 10, 0)
    assert spike["units"] > spike["threshold"]
    # later in the day, a refresh keeps the time it first crossed
    third = refresh(db, _at(today, 11, 0), TZ, TIMEZONE, RULE)
    assert third["spikes"][0]["crossed_at"] == _at(today, 10, 0)
    stored = db[EMERGING_SPIKES].find_one({"_id": today.isoformat()})
    assert stored["local_time"] == "11:00"
    del orders
