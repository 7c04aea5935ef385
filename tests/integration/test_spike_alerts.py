"""Spike alerts on the real store, to a real HTTP receiver started by the test: one POST per
product and day (emerging, then confirmed by the daily run without a second POST), nothing
for days older than the window, retries with back-off, a receiver that is down (recorded,
shown on the Pipeline health page, delivered by the next run), and the URL's token never in
a command's output or on the page. Dates are pinned."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import streamlit as st
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

from shopstream.config import Settings, settings_env
from shopstream.spikes.alerts import send_daily, send_emerging
from shopstream.store.protocols import Store
from tests.utils import fresh_store
from tests.utils.orders import order_doc, write_orders
from tests.utils.spikes import DAYS, FIRST, SPIKE_DAY, SPIKER, STEADY, at_local
from tests.utils.spikes import dataset as spike_dataset
from tests.utils.webhook import Receiver, free_port

pytestmark = pytest.mark.integration

TIMEZONE = "America/New_York"
TZ = ZoneInfo(TIMEZONE)
TODAY = FIRST + timedelta(days=DAYS)  # the day after the dataset
ATTEMPTS = 4


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return at_local(day, hour, minute, TZ)


def alert_settings(stack: Settings, store: Store, url: str, at: datetime, **extra: Any) -> Settings:
    """The stack's settings on `store`, the clock stopped at `at`, alerts to `url` (tiny
    back-off), and test_spikes.py's rule (30 days, no weekday baseline, margin 1.5)."""
    values: dict[str, Any] = {
        "mongo_database": store.name,
        "business_timezone": TIMEZONE,
        "clock_frozen_at": at,
        "spike_webhook_url": SecretStr(url),
        "spike_webhook_attempts": ATTEMPTS,
        "spike_webhook_backoff_s": 0.01,
        "spike_webhook_timeout_s": 3.0,
        "spike_lookback_days": 30,
        "spike_weekday": False,
        "spike_margin": 1.5,
    }
    return stack.model_copy(update={**values, **extra})


def spikes_cli(settings: Settings, *args: str) -> str:
    """`shopstream spikes ...` as the DAGs' tasks run it, with `settings`: it must exit 0; its
    output, lines joined (the console wraps them)."""
    command = [sys.executable, "-m", "shopstream", "spikes", *args]
    done = subprocess.run(
        command, env=settings_env(settings), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert Receiver.TOKEN not in done.stdout + done.stderr  # the URL is a secret
    return " ".join(done.stdout.split())


def day_doc(day: date, products: list[int], event: bool = False) -> dict[str, Any]:
    """A detected day's document as the detector stores it (the fields alerts read)."""
    spikes = [
        {"product_id": p, "name": f"Product {p}", "category": "Toys", "day": day.isoformat(),
         "units": 40 + p, "orders": 30, "p95": 10.0, "threshold": 15.0, "ratio": 4.0 + p / 10,
         "store_level": 1.0, "orders_expected": 4.0, "p_value": 1e-9}
        for p in products
    ]  # fmt: skip
    store = {"level": 1.8 if event else 1.0, "event": event, "products_used": 50, "margin": 1.3}
    return {"day": day.isoformat(), "spikes": spikes, "count": len(spikes), "store": store,
            "rule": {}, "products_evaluated": 50}  # fmt: skip


@pytest.fixture
def store(stack: Settings) -> Iterator[Store]:
    with fresh_store(stack, "alerts") as opened:
        yield opened


def test_each_spike_is_posted_once_from_the_intraday_check_through_the_daily_run(
    stack: Settings, store: Store
) -> None:
    write_orders(store, spike_dataset(TZ), TZ, stack)
    yesterday = TODAY - timedelta(days=1)
    with Receiver() as receiver:
        morning = alert_settings(stack, store, receiver.url, _at(TODAY, 10))
        # yesterday's run (no spikes) loads the history the intraday check compares with
        spikes_cli(morning, "run", "--date", yesterday.isoformat(), "--force")
        assert receiver.bodies == []
        rng = random.Random(3)
        bought = [order_doc(rng.randint(1, 50), _at(TODAY, 1, 5), [(p, 3, 1000)]) for p in STEADY]
        rush = [order_doc(7, _at(TODAY, 9, m), [(4, 1, 1000)]) for m in range(10, 50, 2)]
        write_orders(store, bought + rush, TZ, stack)

        first = spikes_cli(morning, "emerging", "--at", _at(TODAY, 10).isoformat())
        assert receiver.alert_ids() == [f"{TODAY}|4"]
        assert "spike alerts: 1 posted" in first
        [alert] = receiver.bodies[0]["alerts"]
        assert (alert["kind"], alert["product_id"], alert["units"]) == ("emerging", 4, 23)
        assert alert["crossed_at"] == _at(TODAY, 10).isoformat()
        assert alert["url"] == f"{stack.dashboard_url}/spikes"
        later = alert_settings(stack, store, receiver.url, _at(TODAY, 11))
        spikes_cli(later, "emerging", "--at", _at(TODAY, 11).isoformat())
        assert len(receiver.bodies) == 1  # still above: not posted again

        # after midnight the daily run finds product 4's spike: already alerted, not posted
        night = alert_settings(stack, store, receiver.url, _at(TODAY + timedelta(days=1), 1))
        daily = spikes_cli(night, "run", "--date", TODAY.isoformat(), "--force")
        assert "1 spike(s) already alerted as emerging that day: not posted again" in daily
        assert len(receiver.bodies) == 1
        entry = store.alerts.ledger(TODAY.isoformat())["4"]
        assert (entry.kind, entry.status, entry.attempts) == ("emerging", "delivered", 1)
        assert entry.delivered_at == _at(TODAY, 10)
        assert entry.confirmed_at == _at(TODAY + timedelta(days=1), 1)

        # a backfill (or Airflow's catchup) of older days alerts nobody, spikes and all
        old = spikes_cli(night, "run", "--from", str(SPIKE_DAY - timedelta(days=1)),
                         "--to", str(SPIKE_DAY), "--force")  # fmt: skip
        spiked = store.spikes.spikes_of(SPIKE_DAY.isoformat())
        assert spiked is not None
        assert [s["product_id"] for s in spiked.spikes] == [SPIKER]
        assert "2 day(s) older than the alert window" in old
        assert len(receiver.bodies) == 1
        assert store.alerts.ledger(SPIKE_DAY.isoformat()) == {}
    state = store.alerts.status()
    assert (state.undelivered, state.last_delivered_at) == ({}, _at(TODAY, 10))


def test_a_post_answered_500_twice_is_delivered_on_the_third_attempt(
    stack: Settings, store: Store
) -> None:
    store.spikes.write_day(TODAY.isoformat(), day_doc(TODAY, [3, 8]))
    with Receiver(500, 500) as receiver:
        settings = alert_settings(stack, store, receiver.url, _at(TODAY, 23))
        sent = send_daily(store, settings, [TODAY])
        assert (sent.posted, sent.failed) == (2, 0)
        assert receiver.alert_ids() == [f"{TODAY}|3", f"{TODAY}|8"] * 3  # the same POST thrice
        ledger = store.alerts.ledger(TODAY.isoformat())
        assert {k: (e.status, e.attempts) for k, e in ledger.items()} == {
            "3": ("delivered", 3),
            "8": ("delivered", 3),
        }
        assert ledger["3"].alert["ratio"] == 4.3
        again = send_daily(store, settings, [TODAY])  # a rerun of the day posts nothing new
        assert (again.posted, len(receiver.bodies)) == (0, 3)


def test_a_receiver_that_is_down_is_recorded_and_the_next_run_delivers(
    stack: Settings, store: Store
) -> None:
    port = free_port()
    down = f"http://127.0.0.1:{port}/services/{Receiver.TOKEN}"
    store.spikes.write_day(TODAY.isoformat(), day_doc(TODAY, [3], event=True))
    settings = alert_settings(stack, store, down, _at(TODAY, 23))
    sent = send_daily(store, settings, [TODAY])
    assert (sent.posted, sent.failed) == (0, 2)
    assert sent.error is not None
    assert sent.error.startswith("ConnectError")
    assert Receiver.TOKEN not in sent.error
    ledger = store.alerts.ledger(TODAY.isoformat())
    assert {k: (e.kind, e.status, e.attempts) for k, e in ledger.items()} == {
        "store": ("store_event", "failed", ATTEMPTS),
        "3": ("spike", "failed", ATTEMPTS),
    }
    state = store.alerts.status()
    assert state.undelivered == {TODAY.isoformat(): 2}
    assert state.last_error == sent.error
    assert state.last_delivered_at is None

    # the receiver is back; the next intraday run (nothing emerging) delivers what failed
    with Receiver(port=port) as receiver:
        later = alert_settings(stack, store, receiver.url, _at(TODAY, 23, 5))
        retried = send_emerging(store, later, TODAY.isoformat())
        assert (retried.posted, retried.failed) == (2, 0)
        assert sorted(receiver.alert_ids()) == [f"{TODAY}|3", f"{TODAY}|store"]
    ledger = store.alerts.ledger(TODAY.isoformat())
    assert {k: (e.status, e.attempts) for k, e in ledger.items()} == {
        "store": ("delivered", ATTEMPTS + 1),
        "3": ("delivered", ATTEMPTS + 1),
    }
    state = store.alerts.status()
    assert (state.undelivered, state.last_delivered_at) == ({}, _at(TODAY, 23, 5))


def test_the_slack_format_posts_one_readable_message(stack: Settings, store: Store) -> None:
    store.spikes.write_day(TODAY.isoformat(), day_doc(TODAY, [3], event=True))
    with Receiver() as receiver:
        settings = alert_settings(
            stack, store, receiver.url, _at(TODAY, 23), spike_webhook_format="slack"
        )
        send_daily(store, settings, [TODAY])
    [message] = receiver.bodies
    assert message["text"].startswith("shopstream: 2 demand spike alerts")
    lines = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert lines == [
        f"*Store event* {TODAY}: the whole store sold x1.80 its usual",
        f"*Spike* {TODAY}: *Product 3* (product 3, Toys): 43 units vs threshold 15.0 (x4.30)",
    ]


def health_page() -> None:
    from shopstream.dashboard.views import health

    health.render()


def _page(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.delenv("SHOPSTREAM_SPIKE_WEBHOOK_URL", raising=False)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = AppTest.from_function(health_page, default_timeout=30)
        at.run()
    finally:
        st.cache_resource.clear()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_the_health_page_shows_undelivered_alerts_but_never_the_url(
    stack: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = f"http://127.0.0.1:{free_port()}/services/{Receiver.TOKEN}"
    store.spikes.write_day(TODAY.isoformat(), day_doc(TODAY, [3]))
    settings = alert_settings(stack, store, down, _at(TODAY, 23))
    send_daily(store, settings, [TODAY])
    at = _page(settings, monkeypatch)
    assert "Spike alerts" in [h.value for h in at.subheader]
    shown = {m.label: m.value for m in at.metric}
    assert shown["Webhook"] == "configured (json)"
    assert shown["Undelivered alerts"] == "1"
    assert shown["Last delivery"] == "never"
    [warning] = [w.value for w in at.warning if "spike alert" in w.value]
    assert warning.startswith("1 spike alert(s) not delivered; last error 0 s ago: ConnectError")
    page = str(at._tree)  # every element as Streamlit sent it, help texts included
    assert "every spike run posts them again" in page  # a help text: they are in it
    assert Receiver.TOKEN not in page

    unset = settings.model_copy(update={"spike_webhook_url": None})
    at = _page(unset, monkeypatch)
    assert "Spike alerts: none configured (SHOPSTREAM_SPIKE_WEBHOOK_URL)." in [
        i.value for i in at.info
    ]
