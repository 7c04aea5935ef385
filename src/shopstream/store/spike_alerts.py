"""The spike alerts' delivery ledger (`spike_alerts`; docs/spikes.md, "Alerts").

- `spike_alerts` `"2026-11-28"`: the day's alerts, `alerts.<key>` each (key: the product id,
  or "store" for the day's store event) with its kind, status ("pending", "delivered",
  "failed"), attempts, first_seen_at, delivered_at, last_error, confirmed_at and the alert as
  posted. Entries are written field by field (`$set` of `alerts.<key>`), so two runs that
  record different alerts of one day do not overwrite each other.
- `spike_alerts` `"status"` (`ALERT_STATUS_KEY`): the last attempt and delivery, the last
  error, and the undelivered alerts by day, for the Pipeline health page: one point lookup.

Every read is a point lookup by `_id` (FerretDB v1 scans for anything else).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.database import Database

from shopstream.domain.documents import ALERT_STATUS_KEY, SPIKE_ALERTS
from shopstream.store.records import AlertDelivery, AlertStatus

__all__ = ["ledger", "record", "record_status", "status"]

_FIELDS = (
    "kind", "status", "attempts", "first_seen_at", "alert", "delivered_at", "last_error",
    "confirmed_at",
)  # fmt: skip


def ledger(db: Database[dict[str, Any]], day: str) -> dict[str, AlertDelivery]:
    """The day's alerts by key ({} before the first)."""
    doc = db[SPIKE_ALERTS].find_one({"_id": day}) or {}
    return {
        key: AlertDelivery(key=key, **{f: entry.get(f) for f in _FIELDS})
        for key, entry in (doc.get("alerts") or {}).items()
    }


def record(db: Database[dict[str, Any]], day: str, entries: Sequence[AlertDelivery]) -> None:
    """Stores these alerts of the day (its other alerts stay as they are)."""
    if not entries:
        return
    fields = {
        f"alerts.{e.key}": {f: getattr(e, f) for f in _FIELDS} for e in entries
    }  # keys are product ids or "store": never a `.` or `$` in a path
    db[SPIKE_ALERTS].update_one(
        {"_id": day}, {"$set": fields, "$setOnInsert": {"day": day}}, upsert=True
    )


def status(db: Database[dict[str, Any]]) -> AlertStatus:
    doc = db[SPIKE_ALERTS].find_one({"_id": ALERT_STATUS_KEY})
    if doc is None:
        return AlertStatus()
    return AlertStatus(
        last_attempt_at=doc.get("last_attempt_at"),
        last_delivered_at=doc.get("last_delivered_at"),
        last_error=doc.get("last_error"),
        last_error_at=doc.get("last_error_at"),
        undelivered={str(d): int(n) for d, n in (doc.get("undelivered") or {}).items()},
        expired=int(doc.get("expired", 0)),
    )


def record_status(db: Database[dict[str, Any]], state: AlertStatus) -> None:
    """Replaces the status document (its writer computed it from the one it read)."""
    doc = {
        "_id": ALERT_STATUS_KEY,
        "last_attempt_at": state.last_attempt_at,
        "last_delivered_at": state.last_delivered_at,
        "last_error": state.last_error,
        "last_error_at": state.last_error_at,
        "undelivered": dict(sorted(state.undelivered.items())),
        "expired": state.expired,
    }
    db[SPIKE_ALERTS].replace_one({"_id": ALERT_STATUS_KEY}, doc, upsert=True)
