"""Spike alerts: each new spike of a product and business day POSTed once to a webhook.

What is posted (`SHOPSTREAM_SPIKE_WEBHOOK_URL`; nothing, and nothing recorded, when unset):

- one alert per product and business day, the first time the product is seen as a spike
  that day: by the intraday check (kind "emerging": above its threshold so far today) or by
  the daily run (kind "spike"). A daily spike of a product already alerted as emerging that
  day is not posted again: the ledger records that the day confirmed it (`confirmed_at`).
- a day's store event (the whole store surged) once, kind "store_event".
- only for today and the `spike_webhook_max_age_days` days before it: a backfill or an
  Airflow catchup of older days alerts nobody (the command says how many days it skipped).

Payloads: one POST per batch of a run (up to `CHUNK` alerts: a receiver gets one request a
run, and a Slack message stays under its 50 blocks). "json" is `{"source": "shopstream",
"sent_at", "alerts": [...]}`, each alert with `alert_id`, kind, day, product_id, name,
category, units, orders, threshold, ratio, p_value, store_level, crossed_at (emerging) and
url (the dashboard's Demand spikes page), None where a field does not apply. "slack" is a
Slack incoming webhook's message: `{"text", "blocks"}`.

Delivery is at least once: an alert is recorded "pending" in the store's ledger
(`store.alerts`) before its POST and "delivered" or "failed" after, so a crash between the
POST and the record can post it twice, never lose it; two runs overlapping (the daily and
the intraday DAG) may also post a retried alert twice. Receivers dedupe by `alert_id`
(`<day>|<product id>`, `<day>|store`). A POST is retried with back-off within the run
(`spikes.webhook.deliver`); what still fails stays "failed" and every later run of either
command posts it again while its day is in the window (the intraday DAG runs every few
minutes, so a receiver's outage heals by itself). A failed delivery never fails the command:
`Outcome` says what failed, and the ledger's status document shows it on the Pipeline health
page. Each run reads its window's days and the status by `_id` (three point lookups).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shopstream.config import Settings
from shopstream.domain.clock import Clock
from shopstream.spikes.webhook import Post, deliver, http_poster, payload
from shopstream.store.protocols import Store
from shopstream.store.records import AlertDelivery, AlertStatus, DaySpikes, EmergingSpikes

__all__ = [
    "CHUNK",
    "STORE_KEY",
    "Alert",
    "AlertConfig",
    "Outcome",
    "Plan",
    "alert_id",
    "daily_alerts",
    "emerging_alerts",
    "notify",
    "plan",
    "send_daily",
    "send_emerging",
]

log = logging.getLogger(__name__)

Alert = dict[str, Any]  # JSON-ready: what a "json" payload lists
STORE_KEY = "store"  # the ledger's key of a day's store event (products are keyed by id)
CHUNK = 20  # alerts per POST: a Slack message stays within its 50 blocks


def alert_id(day: str, key: str) -> str:
    """`2026-11-28|42` or `2026-11-28|store`: receivers dedupe by it."""
    return f"{day}|{key}"


@dataclass(frozen=True)
class AlertConfig:
    """How alerts are posted (`SHOPSTREAM_SPIKE_WEBHOOK_*`; not the URL: the poster holds it)."""

    format: Literal["json", "slack"] = "json"
    attempts: int = 4
    backoff_s: float = 1.0
    max_age_days: int = 1
    page_url: str | None = None  # the dashboard's Demand spikes page

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertConfig:
        return cls(
            format=settings.spike_webhook_format,
            attempts=settings.spike_webhook_attempts,
            backoff_s=settings.spike_webhook_backoff_s,
            max_age_days=settings.spike_webhook_max_age_days,
            page_url=f"{settings.dashboard_url}/spikes",
        )


# ----------------------------------------------------------------------------- what to post


def _alert(kind: str, day: str, spike: Mapping[str, Any], **extra: Any) -> Alert:
    key = str(spike["product_id"]) if "product_id" in spike else STORE_KEY
    fields = ("product_id", "name", "category", "units", "orders", "threshold", "ratio")
    return {
        "alert_id": alert_id(day, key),
        "kind": kind,
        "day": day,
        **{f: spike.get(f) for f in fields},
        "p_value": spike.get("p_value"),
        "store_level": spike.get("store_level"),
        "crossed_at": None,
        "url": None,
        **extra,
    }


def daily_alerts(found: DaySpikes, url: str | None = None) -> list[Alert]:
    """A detected day's alerts: its store event (if any), then its spikes."""
    alerts = []
    if found.store.get("event"):
        level = {"store_level": found.store.get("level")}
        alerts.append(_alert("store_event", found.day, level, url=url))
    alerts += [_alert("spike", found.day, s, url=url) for s in found.spikes]
    return alerts


def emerging_alerts(today: EmergingSpikes, zone: ZoneInfo, url: str | None = None) -> list[Alert]:
    """The emerging spikes above their threshold now (`crossed_at` in business time)."""
    return [
        _alert(
            "emerging",
            today.day,
            s,
            store_level=today.store_level,
            url=url,
            crossed_at=_local_iso(s.get("crossed_at"), zone),
        )
        for s in today.spikes
        if s.get("above")
    ]


def _local_iso(at: datetime | None, zone: ZoneInfo) -> str | None:
    return None if at is None else at.astimezone(zone).isoformat()


@dataclass(frozen=True)
class Plan:
    new: list[Alert]  # first seen now: to record as pending and post
    confirmed: list[str]  # keys of emerging alerts the daily run found as spikes


def _key(alert: Mapping[str, Any]) -> str:
    return str(alert["alert_id"]).split("|", 1)[1]


def plan(found: Sequence[Alert], ledger: Mapping[str, AlertDelivery]) -> Plan:
    """Which of a day's alerts are new (one per key: the first seen wins), and which emerging
    alerts the daily run confirms (posted once already: not again)."""
    new: dict[str, Alert] = {}
    confirmed = []
    for alert in found:
        key = _key(alert)
        was = ledger.get(key)
        if was is None:
            new.setdefault(key, alert)
        elif alert["kind"] == "spike" and was.kind == "emerging" and was.confirmed_at is None:
            confirmed.append(key)
    return Plan(list(new.values()), sorted(set(confirmed)))


# ----------------------------------------------------------------------------- delivery


@dataclass
class Outcome:
    """What a run's alerting did (the command prints it)."""

    configured: bool = True
    posted: int = 0  # alerts delivered by this run
    failed: int = 0  # alerts not delivered (the next run retries them)
    confirmed: int = 0  # daily spikes already alerted as emerging (not posted again)
    skipped_days: int = 0  # days before the window: not alerted
    error: str | None = None  # the last delivery error

    def lines(self) -> list[str]:
        out = []
        if self.posted:
            out.append(f"spike alerts: {self.posted} posted")
        if self.confirmed:
            out.append(
                f"spike alerts: {self.confirmed} spike(s) already alerted as emerging that day: "
                "not posted again"
            )
        if self.skipped_days:
            out.append(
                f"spike alerts: {self.skipped_days} day(s) older than the alert window "
                "(SHOPSTREAM_SPIKE_WEBHOOK_MAX_AGE_DAYS): not alerted"
            )
        return out

    def warning(self) -> str | None:
        if not self.failed:
            return None
        return (
            f"{self.failed} spike alert(s) not delivered ({self.error}); the spikes are stored. "
            "The next spike run retries them; the Pipeline health page shows their state."
        )


def notify(
    store: Store,
    config: AlertConfig,
    found: Mapping[str, Sequence[Alert]],
    today: date,
    post: Post,
    clock: Clock,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Posts the new alerts of `found` (business day -> its alerts) and every undelivered one
    of the window's days (the module's docstring); records each, and the status."""
    first = (today - timedelta(days=config.max_age_days)).isoformat()
    window = {(today - timedelta(days=i)).isoformat() for i in range(config.max_age_days + 1)}
    outcome = Outcome(skipped_days=sum(1 for d in found if d < first))
    books = {
        day: _take_new(store, day, found.get(day, ()), clock.now(), outcome)
        for day in sorted(window | {d for d in found if d >= first})
    }
    todo = [(d, e) for d, book in books.items() for e in book.values() if e.status != "delivered"]
    delivered_at = _post_all(store, config, todo, books, post, clock, sleep, outcome)
    # the caller says it to people (`Outcome.warning`); the log keeps it for other callers
    log.info("spike alerts posted=%d failed=%d confirmed=%d error=%s", outcome.posted,
             outcome.failed, outcome.confirmed, outcome.error)  # fmt: skip
    _record_status(store, books, first, bool(todo), delivered_at, outcome.error, clock.now())
    return outcome


def _post_all(
    store: Store,
    config: AlertConfig,
    todo: Sequence[tuple[str, AlertDelivery]],
    books: dict[str, dict[str, AlertDelivery]],
    post: Post,
    clock: Clock,
    sleep: Callable[[float], None],
    outcome: Outcome,
) -> datetime | None:
    """POSTs `todo` (day, alert) in batches of `CHUNK` and records each alert's outcome (in
    `books` too); once a batch fails, the rest is recorded as failed without a POST (the
    receiver is down: the next run tries again). Returns when the last batch was delivered."""
    delivered_at, error = None, None
    for i in range(0, len(todo), CHUNK):
        chunk = todo[i : i + CHUNK]
        if outcome.failed:
            made, error = 0, f"not sent: an earlier POST of this run failed ({outcome.error})"
        else:
            body = payload(config.format, [e.alert for _, e in chunk], clock.now())
            made, error = deliver(post, body, config.attempts, config.backoff_s, sleep)
        done = clock.now()
        for day, entries in _by_day(chunk).items():
            results = [_result(e, made, error, done) for e in entries]
            books[day] |= {e.key: e for e in results}
            store.alerts.record(day, results)
        if error is None:
            outcome.posted, delivered_at = outcome.posted + len(chunk), done
        else:
            outcome.failed, outcome.error = outcome.failed + len(chunk), outcome.error or error
    return delivered_at


def _take_new(
    store: Store, day: str, found: Sequence[Alert], now: datetime, outcome: Outcome
) -> dict[str, AlertDelivery]:
    """The day's ledger with its new alerts recorded as pending and its confirmations."""
    book = store.alerts.ledger(day)
    todo = plan(found, book)
    fresh = [
        AlertDelivery(_key(a), a["kind"], "pending", 0, now, a) for a in todo.new
    ]  # recorded before any POST: a crash after it posts again, never loses the alert
    confirmed = [replace(book[k], confirmed_at=now) for k in todo.confirmed]
    store.alerts.record(day, fresh + confirmed)
    outcome.confirmed += len(confirmed)
    return book | {e.key: e for e in fresh + confirmed}


def _by_day(chunk: Sequence[tuple[str, AlertDelivery]]) -> dict[str, list[AlertDelivery]]:
    out: dict[str, list[AlertDelivery]] = {}
    for day, entry in chunk:
        out.setdefault(day, []).append(entry)
    return out


def _result(entry: AlertDelivery, made: int, error: str | None, at: datetime) -> AlertDelivery:
    if error is None:
        return replace(entry, status="delivered", attempts=entry.attempts + made, delivered_at=at)
    return replace(entry, status="failed", attempts=entry.attempts + made, last_error=error)


def _record_status(
    store: Store,
    books: Mapping[str, Mapping[str, AlertDelivery]],
    first: str,
    attempted: bool,
    delivered_at: datetime | None,
    error: str | None,
    now: datetime,
) -> None:
    """Updates the status document: undelivered alerts by day (a day that left the window
    with some is counted as expired: they are not retried any more)."""
    old = store.alerts.status()
    undelivered = {
        day: n
        for day, book in books.items()
        if (n := sum(1 for e in book.values() if e.status != "delivered"))
    }
    gone = sum(n for day, n in old.undelivered.items() if day < first)
    status = AlertStatus(
        last_attempt_at=now if attempted else old.last_attempt_at,
        last_delivered_at=delivered_at or old.last_delivered_at,
        last_error=error or old.last_error,
        last_error_at=now if error else old.last_error_at,
        undelivered=undelivered,
        expired=old.expired + gone,
    )
    if status != old:
        store.alerts.record_status(status)


# ----------------------------------------------------------------------------- the commands'


def send_daily(store: Store, settings: Settings, days: Sequence[date]) -> Outcome:
    """Alerts for the stored spikes of `days` (after `shopstream spikes run`)."""
    if settings.spike_webhook_url is None:
        return Outcome(configured=False)
    config = AlertConfig.from_settings(settings)
    first = settings.clock.today() - timedelta(days=config.max_age_days)
    found: dict[str, list[Alert]] = {d.isoformat(): [] for d in days if d < first}  # counted
    for day in (d for d in days if d >= first):
        stored = store.spikes.spikes_of(day.isoformat())
        found[day.isoformat()] = daily_alerts(stored, config.page_url) if stored else []
    return _send(store, settings, config, found)


def send_emerging(store: Store, settings: Settings, day: str) -> Outcome:
    """Alerts for the day's stored emerging spikes (after `shopstream spikes emerging`)."""
    if settings.spike_webhook_url is None:
        return Outcome(configured=False)
    config = AlertConfig.from_settings(settings)
    today = store.spikes.emerging(day)
    found = emerging_alerts(today, settings.clock.zone, config.page_url) if today else []
    return _send(store, settings, config, {day: found})


def _send(
    store: Store, settings: Settings, config: AlertConfig, found: Mapping[str, Sequence[Alert]]
) -> Outcome:
    secret = settings.spike_webhook_url
    if secret is None:  # the callers return before reading anything
        return Outcome(configured=False)
    with http_poster(secret.get_secret_value(), settings.spike_webhook_timeout_s) as post:
        return notify(store, config, found, settings.clock.today(), post, settings.clock)
