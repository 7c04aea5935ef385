"""Demand spikes on the real store: daily demand from the stream's rollups, the day's spikes,
idempotent reruns, range backfills, stale spikes cleared, today's emerging spikes, and a run
killed mid-way whose retry gives what an undisturbed run gives."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from shopstream import failpoints
from shopstream.config import Settings, settings_env
from shopstream.domain.documents import DAILY_DEMAND, DEMAND_HISTORY, DEMAND_SPIKES, LEASES
from shopstream.spikes.detector import expected_days, run, window
from shopstream.spikes.intraday import refresh
from shopstream.spikes.rule import Rule
from shopstream.store.client import connect
from shopstream.store.protocols import Store
from tests.utils import fresh_store
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
def store(stack: Settings) -> Iterator[tuple[Store, list[dict[str, Any]]]]:
    orders = dataset()
    with fresh_store(stack, "spikes") as opened:
        write_orders(opened, orders, TZ, stack)
        yield opened, orders


def _detect(store: Store, first: date, last: date, rule: Rule = RULE) -> None:
    run(store, first, last, TZ, rule, report=lambda _: None)


def _spikes(store: Store, day: date) -> Any:
    """A day's stored spikes, without the time they were detected at."""
    found = store.spikes.spikes_of(day.isoformat())
    assert found is not None
    return dataclasses.replace(found, detected_at=None)


def test_daily_demand_and_spikes_of_a_day(store: Any) -> None:
    db, orders = store
    _detect(db, SPIKE_DAY, SPIKE_DAY)
    truth = by_business_day(orders)
    demand = db.demand.stored_day(SPIKE_DAY)
    got = {p["product_id"]: p["units"] for p in demand.products}
    assert got == dict(truth[SPIKE_DAY.isoformat()])
    revenue = {p["product_id"]: p["revenue_cents"] for p in demand.products}
    assert revenue == {p: u * (1000 + p) for p, u in got.items()}
    # the lookback's days were loaded on the way (a first run needs no separate backfill)
    for back in (1, 13, 29):
        day = SPIKE_DAY - timedelta(days=back)
        stored = db.demand.stored_day(day)
        assert {p["product_id"]: p["units"] for p in stored.products} == dict(truth[str(day)])
    # the history holds each product's units by day, across the quarter's boundary too
    start = SPIKE_DAY - timedelta(days=29)
    history = db.demand.read_history(start, SPIKE_DAY)
    assert db.demand.loaded_days(start, SPIKE_DAY) == {start + timedelta(days=i) for i in range(30)}
    row = list(history.product_ids).index(SPIKER)
    for i in range(30):
        day = (start + timedelta(days=i)).isoformat()
        assert history.units[row, i] == truth[day][SPIKER]
    assert history.units[row, history.column(SPIKE_DAY)] == 60
    # and its orders (the noise test's input): four a day, sixty buyers on the spike day
    assert history.orders is not None
    assert history.orders[row, history.column(SPIKE_DAY)] == 60
    assert set(history.orders[row, :-1].tolist()) == {4}

    spikes = _spikes(db, SPIKE_DAY)
    assert [s["product_id"] for s in spikes.spikes] == [SPIKER]  # not the newcomer: 10 days
    spike = spikes.spikes[0]
    assert spike["units"] == 60
    assert spike["category"] == "Kitchen"
    assert spike["name"] == f"Product {SPIKER}"
    assert spike["history_days"] == 30
    assert spike["p95"] <= 12
    assert spike["ratio"] == pytest.approx(60 / spike["p95"], rel=1e-3)
    assert len(spike["history"]) == 30
    assert spike["history"][-1] == truth[(SPIKE_DAY - timedelta(days=1)).isoformat()][SPIKER]
    assert spikes.rule == RULE.as_document()
    assert spike["orders"] == 60
    assert spike["orders_expected"] == pytest.approx(4.0)
    assert spike["p_value"] < RULE.alpha
    assert spikes.store == {"level": 1.0, "event": False, "products_used": 5, "margin": 1.3}


def test_a_rerun_gives_the_same_result(store: Any) -> None:
    db, _ = store
    _detect(db, SPIKE_DAY, SPIKE_DAY)
    before, demand = _spikes(db, SPIKE_DAY), db.demand.stored_day(SPIKE_DAY)
    _detect(db, SPIKE_DAY, SPIKE_DAY)
    assert _spikes(db, SPIKE_DAY) == before
    assert db.demand.stored_day(SPIKE_DAY) == demand


def test_a_range_backfill_and_stale_spikes_cleared(store: Any) -> None:
    db, _ = store
    first = SPIKE_DAY - timedelta(days=2)
    _detect(db, first, SPIKE_DAY + timedelta(days=2))
    index = db.spikes.detected_days()
    assert list(index) == sorted(index, reverse=True)  # newest first
    for i in range(5):
        day = first + timedelta(days=i)
        assert index[day.isoformat()] == (1 if day == SPIKE_DAY else 0)
        assert len(_spikes(db, day).spikes) == index[day.isoformat()]
    # a stricter rule finds nothing on the day: its stored spikes are replaced, not kept
    _detect(db, SPIKE_DAY, SPIKE_DAY, Rule(**{**RULE.as_document(), "margin": 10.0}))
    assert _spikes(db, SPIKE_DAY).spikes == []
    assert db.spikes.detected_days()[SPIKE_DAY.isoformat()] == 0
    _detect(db, SPIKE_DAY, SPIKE_DAY)  # and back
    assert len(_spikes(db, SPIKE_DAY).spikes) == 1


def test_a_store_event_is_kept_and_left_out_of_later_histories(store: Any) -> None:
    db, _ = store
    event = SPIKE_DAY - timedelta(days=5)
    _detect(db, event, event)  # five products: too few to measure the store's level
    assert db.spikes.store_events() == {}
    ordinary = _spikes(db, event)
    surge = {**ordinary.store, "event": True, "level": 1.8}
    doc = {"day": ordinary.day, "spikes": ordinary.spikes, "count": len(ordinary.spikes),
           "rule": ordinary.rule, "store": surge}  # fmt: skip
    db.spikes.write_day(event.isoformat(), doc)  # as a run on a bigger store would have
    assert db.spikes.store_events() == {event.isoformat(): 1.8}
    _detect(db, SPIKE_DAY, SPIKE_DAY)
    spike = _spikes(db, SPIKE_DAY).spikes[0]
    assert spike["history"][(event - date.fromisoformat(spike["history_start"])).days] is None
    assert spike["history_days"] == 29  # the event day is not one of the product's days
    _detect(db, event, event)  # decided again: not an event, so out of the index
    assert db.spikes.store_events() == {}
    _detect(db, SPIKE_DAY, SPIKE_DAY)
    assert _spikes(db, SPIKE_DAY).spikes[0]["history_days"] == 30


def test_a_spike_labelled_expected_leaves_later_baselines(store: Any, stack: Settings) -> None:
    db, _ = store
    _detect(db, SPIKE_DAY, SPIKE_DAY)
    env = settings_env(
        stack.model_copy(update={"mongo_database": db.name, "business_timezone": TIMEZONE})
    )
    label = [sys.executable, "-m", "shopstream", "spikes", "label", "--date", str(SPIKE_DAY)]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*label, *args], env=env, capture_output=True, text=True, timeout=60)

    wrong = cli("expected", "--product", "2")
    assert wrong.returncode == 1
    assert f"product 2 is not a spike of {SPIKE_DAY} (its spikes: {SPIKER})" in wrong.stderr
    assert cli("maybe", "--product", str(SPIKER)).returncode == 1
    done = cli("expected", "--product", str(SPIKER), "--note", "a promotion", "--by", "ana")
    assert done.returncode == 0, done.stderr
    [stored] = db.spikes.labels()
    assert (stored.day, stored.product_id, stored.label, stored.note, stored.by) == (
        str(SPIKE_DAY), SPIKER, "expected", "a promotion", "ana",
    )  # fmt: skip
    later = SPIKE_DAY + timedelta(days=2)
    history = db.demand.read_history(later - timedelta(days=RULE.lookback_days), later)
    history.excluded = expected_days(db)
    w = window(history, later, RULE)
    row = list(history.product_ids).index(SPIKER)
    assert np.isnan(w.history[row, -2])  # the expected day is not one of its days
    assert np.isfinite(w.history[:, -2]).sum() == len(history.product_ids) - 1  # others keep it
    assert cli("clear", "--product", str(SPIKER)).returncode == 0
    assert db.spikes.labels() == []


def test_emerging_spikes_of_today(store: Any, stack: Settings) -> None:
    db, orders = store
    today = FIRST + timedelta(days=DAYS)  # the day after the dataset
    _detect(db, today - timedelta(days=1), today - timedelta(days=1))  # history up to yesterday
    rng = random.Random(3)
    morning = [order_doc(rng.randint(1, 50), _at(today, 1, 5), [(p, 3, 1000)]) for p in STEADY]
    rush = [order_doc(7, _at(today, 9, m), [(4, 1, 1000)]) for m in range(10, 50, 2)]
    write_orders(db, morning, TZ, stack)
    first = refresh(db, _at(today, 8, 0), TZ, RULE)
    # at 08:00 products 1-5 have sold 3 each, a normal day's first quarter: nothing yet
    assert first["count"] == 0
    assert first["provisional"] is True
    write_orders(db, rush, TZ, stack)
    second = refresh(db, _at(today, 10, 0), TZ, RULE)
    assert [(s["product_id"], s["above"]) for s in second["spikes"]] == [(4, True)]
    spike = second["spikes"][0]
    assert spike["units"] == 23  # against ~5 by 10:00 on a normal day
    assert spike["orders"] == 21  # against ~2 (p ~ 10^-13): many buyers, not one big order
    assert spike["crossed_at"] == _at(today, 10, 0)
    assert spike["units"] > spike["threshold"]
    # later in the day, a refresh keeps the time it first crossed
    third = refresh(db, _at(today, 11, 0), TZ, RULE)
    assert third["spikes"][0]["crossed_at"] == _at(today, 10, 0)
    stored = db.spikes.emerging(today.isoformat())
    assert stored is not None
    assert (stored.local_time, stored.count) == ("11:00", 1)
    assert stored.spikes == third["spikes"]
    del orders


# ----------------------------------------------------------------------------- killed mid-way

DERIVED = (DAILY_DEMAND, DEMAND_HISTORY, DEMAND_SPIKES)
UNTIMED = ("computed_at", "detected_at")  # when, not what
LEASE_TTL_S = 3.0
KILLED_RANGE = (SPIKE_DAY - timedelta(days=2), SPIKE_DAY + timedelta(days=2))


def _derived(stack: Settings, database: str) -> dict[str, dict[Any, Any]]:
    """Every document the detector writes, by collection and `_id`, without its times."""
    client = connect(stack.mongo_url, app="shopstream-test")
    try:
        db = client[database]
        return {
            name: {
                d["_id"]: {k: v for k, v in d.items() if k not in UNTIMED} for d in db[name].find()
            }
            for name in DERIVED
        }
    finally:
        client.close()


def _spikes_cli(stack: Settings, database: str, first: date, last: date, failpoint: str) -> int:
    """`shopstream spikes run` over [first, last] as the DAG's task runs it, on `database`,
    with RULE (a failpoint armed when given); its exit code (-9: killed)."""
    settings = stack.model_copy(
        update={
            "mongo_database": database,
            "business_timezone": TIMEZONE,
            "spike_lease_ttl_s": LEASE_TTL_S,
            "spike_lookback_days": RULE.lookback_days,
            "spike_min_history_days": RULE.min_history_days,
            "spike_min_units": RULE.min_units,
            "spike_min_orders": RULE.min_orders,
            "spike_margin": RULE.margin,
            "spike_weekday": RULE.weekday,
            "spike_alpha": RULE.alpha,
            "spike_store_margin": RULE.store_margin,
        }
    )
    env = {**settings_env(settings), failpoints.ENV: failpoint}
    command = [sys.executable, "-m", "shopstream", "spikes", "run", "--force"]
    command += ["--from", first.isoformat(), "--to", last.isoformat()]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, -9), done.stderr[-3000:]
    return done.returncode


@pytest.fixture(scope="module")
def undisturbed(stack: Settings) -> Iterator[tuple[str, dict[str, dict[Any, Any]]]]:
    """A store of its own with the dataset, and what an undisturbed run over KILLED_RANGE
    writes."""
    with fresh_store(stack, "spikes_killed") as opened:
        write_orders(opened, dataset(), TZ, stack)
        database = opened.name
        assert _spikes_cli(stack, database, *KILLED_RANGE, "") == 0
        documents = _derived(stack, database)
        assert len(documents[DEMAND_SPIKES]) == 6  # five days and the index
        assert documents[DEMAND_SPIKES][SPIKE_DAY.isoformat()]["count"] == 1
        yield database, documents


@pytest.mark.parametrize(
    "failpoint",
    [
        "demand.before_calendar=1",  # the first quarter's shards written, no day loaded yet
        "demand.before_calendar=2",  # the first quarter loaded, the second's shards written
        "spikes.day_stored=2",  # two days detected, three to go
    ],
)
def test_a_run_killed_mid_way_then_retried_equals_an_undisturbed_run(
    stack: Settings, undisturbed: tuple[str, dict[str, dict[Any, Any]]], failpoint: str
) -> None:
    """SIGKILL inside a range run (the lookback's days loaded across a quarter's boundary),
    holding the lease: the retry takes the dead run's lease over once it expires and leaves
    every document as an undisturbed run does; no lease is left behind. (Written after the
    calendar, the first sales were lost by a kill at `demand.before_calendar=2`.)"""
    database, documents = undisturbed
    client = connect(stack.mongo_url, app="shopstream-test")
    try:
        for name in DERIVED:
            client[database].drop_collection(name)
        assert _spikes_cli(stack, database, *KILLED_RANGE, failpoint) == -9
        # killed holding the lease: it is still there, its holder dead
        assert client[database][LEASES].count_documents({}) == 1
        assert _derived(stack, database) != documents
        assert _spikes_cli(stack, database, *KILLED_RANGE, "") == 0  # the retry
        assert client[database][LEASES].count_documents({}) == 0
    finally:
        client.close()
    assert _derived(stack, database) == documents
