"""What the Demand spikes page reads: the detected days, a day's spikes, today's emerging
spikes (point lookups on `demand_spikes` and `emerging_spikes`; docs/spikes.md)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pymongo.database import Database

from shopstream.domain.documents import DEMAND_SPIKES, EMERGING_SPIKES, SPIKE_DAYS_KEY
from shopstream.store.errors import translated
from shopstream.store.records import DaySpikes, EmergingSpikes

__all__ = [
    "DaySpikes",
    "detected_days",
    "emerging",
    "history_points",
    "spikes_of",
    "store_events",
    "write_day",
    "write_emerging",
]


@translated
def detected_days(db: Database[dict[str, Any]]) -> dict[str, int]:
    """Every detected day (newest first) with its number of spikes."""
    doc = db[DEMAND_SPIKES].find_one({"_id": SPIKE_DAYS_KEY}) or {}
    days: dict[str, int] = doc.get("days") or {}
    return dict(sorted(days.items(), reverse=True))


@translated
def store_events(db: Database[dict[str, Any]]) -> dict[str, float]:
    """Every store-event day (the whole store surged), oldest first, with its store level."""
    doc = db[DEMAND_SPIKES].find_one({"_id": SPIKE_DAYS_KEY}) or {}
    events: dict[str, float] = doc.get("store_events") or {}
    return dict(sorted(events.items()))


@translated
def spikes_of(db: Database[dict[str, Any]], day: str) -> DaySpikes | None:
    doc = db[DEMAND_SPIKES].find_one({"_id": day})
    if doc is None:
        return None
    return DaySpikes(
        day=day,
        spikes=list(doc.get("spikes") or []),
        rule=dict(doc.get("rule") or {}),
        evaluated=int(doc.get("products_evaluated", 0)),
        detected_at=doc.get("detected_at"),
        store=dict(doc.get("store") or {}),
    )


@translated
def emerging(db: Database[dict[str, Any]], day: str) -> EmergingSpikes | None:
    doc = db[EMERGING_SPIKES].find_one({"_id": day})
    if doc is None:
        return None
    return EmergingSpikes(
        day=day,
        as_of=doc.get("as_of"),
        local_time=str(doc.get("local_time", "")),
        spikes=list(doc.get("spikes") or []),
        count=int(doc.get("count", 0)),
        store_level=doc.get("store_level"),
        rule=dict(doc.get("rule") or {}),
    )


def history_points(spike: dict[str, Any]) -> list[dict[str, Any]]:
    """A spike's daily units for its chart: the history days (from the product's first sale)
    and the spike day itself."""
    start = date.fromisoformat(spike["history_start"])
    points = [
        {"day": start + timedelta(days=i), "units": units, "kind": "history"}
        for i, units in enumerate(spike.get("history") or [])
        if units is not None
    ]
    points.append({"day": date.fromisoformat(spike["day"]), "units": spike["units"], "kind": "day"})
    return points


def write_day(db: Database[dict[str, Any]], day: str, doc: dict[str, Any]) -> None:
    """Stores a day's spikes (`doc`, whose `count` is how many, and `store` the day's store
    level) and updates the index of detected days and store events (one writer at a time: the
    detector holds `store.leases`)."""
    coll = db[DEMAND_SPIKES]
    coll.replace_one({"_id": day}, {**doc, "_id": day}, upsert=True)
    index = coll.find_one({"_id": SPIKE_DAYS_KEY}) or {"_id": SPIKE_DAYS_KEY, "days": {}}
    index["days"][day] = doc["count"]
    index["days"] = dict(sorted(index["days"].items()))
    events = dict(index.get("store_events") or {})
    store = doc.get("store") or {}
    if store.get("event"):
        events[day] = store["level"]
    else:
        events.pop(day, None)
    index["store_events"] = dict(sorted(events.items()))
    coll.replace_one({"_id": SPIKE_DAYS_KEY}, index, upsert=True)


def write_emerging(db: Database[dict[str, Any]], day: str, doc: dict[str, Any]) -> None:
    """Stores today's provisional spikes (replacing the previous check's)."""
    db[EMERGING_SPIKES].replace_one({"_id": day}, {**doc, "_id": day}, upsert=True)
