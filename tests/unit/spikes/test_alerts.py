"""Spike alerts, pure: what is alerted (one per product and day, emerging then daily once, the
store event, the window), the payloads, the retries with back-off, and a run's decisions over
an in-memory ledger (the real store's is tested in tests/integration/test_spike_alerts.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shopstream.domain.clock import Clock
from shopstream.spikes.alerts import (
    CHUNK,
    AlertConfig,
    Outcome,
    daily_alerts,
    emerging_alerts,
    notify,
    plan,
)
from shopstream.spikes.webhook import (
    HIDDEN,
    DeliveryError,
    deliver,
    json_payload,
    redact,
    slack_payload,
)
from shopstream.store.records import AlertDelivery, AlertStatus, DaySpikes, EmergingSpikes

TZ = ZoneInfo("America/New_York")
DAY = "2026-11-27"
TODAY = date(2026, 11, 28)
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
CLOCK = Clock.fixed(NOW, TZ)
CONFIG = AlertConfig(attempts=3, backoff_s=0.5, max_age_days=1, page_url="http://dash/spikes")


def spike(pid: int, units: int = 60, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "product_id": pid,
        "name": name if name is not None else f"Product {pid}",
        "category": "Toys",
        "day": DAY,
        "units": units,
        "orders": 12,
        "threshold": 18.5,
        "ratio": 3.2432,
        "p_value": 2.1e-6,
        "store_level": 1.0,
        "p95": 12.3333,
        "orders_expected": 3.5,
        **extra,
    }


def day_spikes(day: str, spikes: list[dict[str, Any]], event: bool = False) -> DaySpikes:
    store = {"level": 1.62, "event": event, "products_used": 40, "margin": 1.3}
    return DaySpikes(day, spikes, {}, 100, None, store)


def emerging(day: str, spikes: list[dict[str, Any]]) -> EmergingSpikes:
    return EmergingSpikes(day, NOW, "10:00", spikes, len(spikes), 1.05, {})


# ----------------------------------------------------------------------------- what is alerted


def test_a_detected_day_alerts_its_store_event_once_then_each_spike() -> None:
    alerts = daily_alerts(day_spikes(DAY, [spike(3), spike(7)], event=True), "http://d/spikes")
    assert [(a["alert_id"], a["kind"]) for a in alerts] == [
        (f"{DAY}|store", "store_event"),
        (f"{DAY}|3", "spike"),
        (f"{DAY}|7", "spike"),
    ]
    event, first = alerts[0], alerts[1]
    assert event["store_level"] == 1.62
    assert event["product_id"] is None
    assert first == {
        "alert_id": f"{DAY}|3",
        "kind": "spike",
        "day": DAY,
        "product_id": 3,
        "name": "Product 3",
        "category": "Toys",
        "units": 60,
        "orders": 12,
        "threshold": 18.5,
        "ratio": 3.2432,
        "p_value": 2.1e-6,
        "store_level": 1.0,
        "crossed_at": None,
        "url": "http://d/spikes",
    }
    assert daily_alerts(day_spikes(DAY, [])) == []


def test_only_emerging_spikes_above_now_are_alerted_with_their_local_crossing_time() -> None:
    crossed = datetime(2026, 11, 28, 15, 5, tzinfo=UTC)
    doc = emerging(
        "2026-11-28",
        [
            spike(3, above=True, crossed_at=crossed),
            spike(4, above=False, crossed_at=crossed),  # was above, is not now
        ],
    )
    alerts = emerging_alerts(doc, TZ)
    assert [a["alert_id"] for a in alerts] == ["2026-11-28|3"]
    assert alerts[0]["kind"] == "emerging"
    assert alerts[0]["crossed_at"] == "2026-11-28T10:05:00-05:00"
    assert alerts[0]["store_level"] == 1.05  # the day's level so far
    json.dumps(alerts)  # JSON-ready as they are


def _entry(key: str, kind: str, status: str = "delivered", **extra: Any) -> AlertDelivery:
    alert = {"alert_id": f"{DAY}|{key}", "kind": kind}
    return AlertDelivery(key, kind, status, 1, NOW, alert, **extra)  # type: ignore[arg-type]


def test_a_product_is_alerted_once_a_day_and_a_daily_spike_confirms_its_emerging_alert() -> None:
    found = daily_alerts(day_spikes(DAY, [spike(3), spike(7), spike(9)], event=True))
    ledger = {
        "3": _entry("3", "emerging"),  # alerted as emerging today: confirmed, not posted
        "7": _entry("7", "spike"),  # a rerun of the day: nothing
        "store": _entry("store", "store_event"),
    }
    decided = plan(found, ledger)
    assert [a["alert_id"] for a in decided.new] == [f"{DAY}|9"]
    assert decided.confirmed == ["3"]
    confirmed = {"3": replace(ledger["3"], confirmed_at=NOW)}
    assert plan(found, ledger | confirmed).confirmed == []  # confirmed once


def test_the_first_alert_of_a_product_in_one_batch_wins() -> None:
    first = daily_alerts(day_spikes(DAY, [spike(3, units=60)]))
    twice = first + daily_alerts(day_spikes(DAY, [spike(3, units=61)]))
    decided = plan(twice, {})
    assert [a["units"] for a in decided.new] == [60]


# ----------------------------------------------------------------------------- payloads


def test_the_json_payload_is_the_alerts_with_the_time_sent() -> None:
    alerts = daily_alerts(day_spikes(DAY, [spike(3)]))
    body = json_payload(alerts, NOW)
    assert body == {"source": "shopstream", "sent_at": NOW.isoformat(), "alerts": alerts}


def test_the_slack_payload_reads_as_a_message_with_names_escaped() -> None:
    crossed = datetime(2026, 11, 28, 15, 5, tzinfo=UTC)
    alerts = [
        *daily_alerts(
            day_spikes(DAY, [spike(3, name="Salt & <Pepper>")], event=True), "http://d/s"
        ),
        *emerging_alerts(emerging("2026-11-28", [spike(4, above=True, crossed_at=crossed)]), TZ),
        *daily_alerts(day_spikes(DAY, [spike(5, ratio=None, threshold=0.0)])),
    ]
    body = slack_payload(alerts)
    lines = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert body["blocks"][0]["text"]["text"] == "shopstream: 4 demand spike alerts"
    assert lines == [
        f"*Store event* {DAY}: the whole store sold x1.62 its usual",
        f"*Spike* {DAY}: *Salt &amp; &lt;Pepper&gt;* (product 3, Toys): 60 units vs threshold "
        "18.5 (x3.24)",
        "*Emerging* 2026-11-28: *Product 4* (product 4, Toys): 60 units so far vs threshold "
        "18.5 (x3.24), crossed at 10:05",
        f"*Spike* {DAY}: *Product 5* (product 5, Toys): 60 units vs threshold 0.0 "
        "(no sales usually)",
    ]
    assert body["blocks"][-1]["elements"][0]["text"] == "<http://d/s|Open the Demand spikes page>"
    assert body["text"].startswith("shopstream: 4 demand spike alerts: store event, Salt &amp;")
    assert len(slack_payload(alerts * 5)["blocks"]) <= 50  # Slack's limit for a message


# ----------------------------------------------------------------------------- one POST


class Receiver:
    """A `Post` that fails with the given errors, then takes every payload."""

    def __init__(self, *failures: DeliveryError) -> None:
        self.failures = list(failures)
        self.calls: list[Mapping[str, Any]] = []

    def __call__(self, payload: Mapping[str, Any]) -> None:
        self.calls.append(payload)
        if self.failures:
            raise self.failures.pop(0)


def test_a_post_is_retried_with_doubling_back_off_until_taken() -> None:
    waits: list[float] = []
    post = Receiver(DeliveryError("HTTP 500", True), DeliveryError("HTTP 503", True))
    assert deliver(post, {"a": 1}, attempts=4, backoff_s=0.5, sleep=waits.append) == (3, None)
    assert waits == [0.5, 1.0]


def test_a_post_gives_up_after_its_attempts_or_at_once_on_a_refusal() -> None:
    waits: list[float] = []
    down = Receiver(*[DeliveryError("ConnectError: refused", True)] * 5)
    assert deliver(down, {}, attempts=3, backoff_s=1, sleep=waits.append) == (
        3,
        "ConnectError: refused",
    )
    assert waits == [1, 2]
    gone = Receiver(DeliveryError("HTTP 404 Not Found: no_service", False))
    assert deliver(gone, {}, attempts=3, backoff_s=1, sleep=waits.append) == (
        1,
        "HTTP 404 Not Found: no_service",
    )


def test_an_error_message_never_holds_the_webhooks_url_or_token() -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    said = f"Client error for url '{url}' (path /services/T000/B000/XXXXSECRET)"
    cleaned = redact(said, url)
    assert "XXXXSECRET" not in cleaned
    assert HIDDEN in cleaned


# ----------------------------------------------------------------------------- a run's decisions


class Ledger:
    """`store.alerts` in memory (the real one: `store.spike_alerts`)."""

    def __init__(self) -> None:
        self.days: dict[str, dict[str, AlertDelivery]] = {}
        self.state = AlertStatus()

    def ledger(self, day: str) -> dict[str, AlertDelivery]:
        return dict(self.days.get(day, {}))

    def record(self, day: str, entries: Sequence[AlertDelivery]) -> None:
        self.days.setdefault(day, {}).update({e.key: e for e in entries})

    def status(self) -> AlertStatus:
        return self.state

    def record_status(self, status: AlertStatus) -> None:
        self.state = status


class FakeStore:
    def __init__(self) -> None:
        self.alerts = Ledger()


def _run(
    store: FakeStore,
    found: dict[str, list[Any]],
    post: Receiver,
    today: date = TODAY,
    config: AlertConfig = CONFIG,
) -> Outcome:
    as_store: Any = store  # notify uses `store.alerts` only
    return notify(as_store, config, found, today, post, CLOCK, sleep=lambda _: None)


def _posted(post: Receiver) -> list[str]:
    return [a["alert_id"] for call in post.calls for a in call["alerts"]]


def test_a_run_posts_new_alerts_once_and_a_rerun_posts_nothing() -> None:
    store, post = FakeStore(), Receiver()
    found = {DAY: daily_alerts(day_spikes(DAY, [spike(3), spike(7)], event=True))}
    outcome = _run(store, found, post)
    assert (outcome.posted, outcome.failed) == (3, 0)
    assert len(post.calls) == 1  # one POST for the run's batch
    assert _posted(post) == [f"{DAY}|store", f"{DAY}|3", f"{DAY}|7"]
    entry = store.alerts.days[DAY]["3"]
    assert (entry.status, entry.attempts, entry.delivered_at) == ("delivered", 1, NOW)
    assert _run(store, found, post).posted == 0
    assert len(post.calls) == 1
    assert store.alerts.state.undelivered == {}
    assert store.alerts.state.last_delivered_at == NOW


def test_an_emerging_alert_is_not_posted_again_by_the_days_daily_spike() -> None:
    store, post = FakeStore(), Receiver()
    today = TODAY.isoformat()
    now_above = emerging(today, [spike(3, above=True, crossed_at=NOW)])
    _run(store, {today: emerging_alerts(now_above, TZ)}, post)
    outcome = _run(store, {today: daily_alerts(day_spikes(today, [spike(3), spike(4)]))}, post)
    assert _posted(post) == [f"{today}|3", f"{today}|4"]
    assert outcome.confirmed == 1
    assert store.alerts.days[today]["3"].kind == "emerging"
    assert store.alerts.days[today]["3"].confirmed_at == NOW


def test_a_failed_delivery_is_recorded_and_posted_again_by_the_next_run() -> None:
    store = FakeStore()
    down = Receiver(*[DeliveryError("ConnectError: refused", True)] * CONFIG.attempts)
    found = {DAY: daily_alerts(day_spikes(DAY, [spike(3)]))}
    outcome = _run(store, found, down)
    assert (outcome.posted, outcome.failed, outcome.error) == (0, 1, "ConnectError: refused")
    assert "not delivered" in str(outcome.warning())
    entry = store.alerts.days[DAY]["3"]
    assert (entry.status, entry.attempts, entry.last_error) == (
        "failed",
        CONFIG.attempts,
        "ConnectError: refused",
    )
    assert store.alerts.state.undelivered == {DAY: 1}
    assert store.alerts.state.last_error == "ConnectError: refused"

    up = Receiver()
    later = _run(store, {}, up)  # e.g. the next intraday run: nothing new, the failed one again
    assert later.posted == 1
    assert _posted(up) == [f"{DAY}|3"]
    entry = store.alerts.days[DAY]["3"]
    assert (entry.status, entry.attempts) == ("delivered", CONFIG.attempts + 1)
    assert store.alerts.state.undelivered == {}


def test_after_a_failed_post_the_rest_of_the_run_waits_for_the_next_run() -> None:
    store = FakeStore()
    down = Receiver(*[DeliveryError("HTTP 503", True)] * CONFIG.attempts)
    many = [spike(pid) for pid in range(1, CHUNK + 6)]
    outcome = _run(store, {DAY: daily_alerts(day_spikes(DAY, many))}, down)
    assert len(down.calls) == CONFIG.attempts  # the first batch only
    assert outcome.failed == len(many)
    untried = store.alerts.days[DAY][str(CHUNK + 5)]
    assert (untried.status, untried.attempts) == ("failed", 0)
    assert str(untried.last_error).startswith("not sent: an earlier POST of this run failed")


def test_days_before_the_window_are_not_alerted_and_expired_failures_are_counted() -> None:
    store = FakeStore()
    old = (TODAY - timedelta(days=5)).isoformat()
    post = Receiver()
    outcome = _run(store, {old: daily_alerts(day_spikes(old, [spike(3)]))}, post)
    assert (outcome.skipped_days, outcome.posted, post.calls) == (1, 0, [])
    assert old not in store.alerts.days

    down = Receiver(*[DeliveryError("HTTP 503", True)] * CONFIG.attempts)
    _run(store, {DAY: daily_alerts(day_spikes(DAY, [spike(3)]))}, down)
    assert store.alerts.state.undelivered == {DAY: 1}
    # two days on, DAY has left the window: its failed alert is given up, and counted
    _run(store, {}, Receiver(), today=TODAY + timedelta(days=2))
    assert store.alerts.state.undelivered == {}
    assert store.alerts.state.expired == 1


@pytest.mark.parametrize("fmt", ["json", "slack"])
def test_each_format_posts_a_json_document(fmt: str) -> None:
    store, post = FakeStore(), Receiver()
    config = replace(CONFIG, format=fmt)  # type: ignore[arg-type]
    found = {DAY: daily_alerts(day_spikes(DAY, [spike(3)]))}
    _run(store, found, post, config=config)
    assert set(post.calls[0]) == (
        {"text", "blocks"} if fmt == "slack" else {"source", "sent_at", "alerts"}
    )
    json.dumps(post.calls[0])
