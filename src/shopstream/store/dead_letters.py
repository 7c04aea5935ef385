"""The `dead_letters` collection: every record the streaming job could not process, keyed by
its Kafka coordinates (`domain.documents.dead_letter_key`), with its reason and raw payload.

The streaming sink inserts them (first record wins, like orders); `shopstream dlq` lists them
and marks the ones it replayed. Listing filters and sorts, which FerretDB v1 answers by
scanning the collection: fine for an operator's command over what should stay a small
collection, never for a page that refreshes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pymongo.database import Database

from shopstream.domain.documents import DEAD_LETTERS
from shopstream.store.errors import translated
from shopstream.store.records import DeadLetter

__all__ = ["mark_replayed", "newest", "summary", "unreplayed"]


def _filter(reason: str | None, include_replayed: bool) -> dict[str, Any]:
    query: dict[str, Any] = {} if include_replayed else {"replayed_at": {"$exists": False}}
    if reason:
        query["reason"] = reason
    return query


@translated
def newest(
    db: Database[dict[str, Any]],
    reason: str | None = None,
    include_replayed: bool = False,
    limit: int = 50,
) -> list[DeadLetter]:
    """The newest dead letters first."""
    cursor = db[DEAD_LETTERS].find(_filter(reason, include_replayed)).sort("failed_at", -1)
    return [_dead_letter(doc) for doc in cursor.limit(limit)]


def _dead_letter(doc: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        key=doc["_id"],
        reason=doc["reason"],
        detail=str(doc.get("detail", "")),
        payload=str(doc.get("payload", "")),
        failed_at=doc["failed_at"],
        replayed_at=doc.get("replayed_at"),
        replayed_to=doc.get("replayed_to"),
    )


@translated
def summary(db: Database[dict[str, Any]]) -> Counter[tuple[str, bool]]:
    """How many dead letters per (reason, replayed)."""
    counts: Counter[tuple[str, bool]] = Counter()
    for doc in db[DEAD_LETTERS].find({}, {"reason": 1, "replayed_at": 1}):
        counts[(doc["reason"], "replayed_at" in doc)] += 1
    return counts


@translated
def unreplayed(db: Database[dict[str, Any]], reason: str | None = None) -> Iterator[DeadLetter]:
    """Every dead letter not replayed yet (of `reason`, if given)."""
    docs = list(db[DEAD_LETTERS].find(_filter(reason, include_replayed=False)))
    return iter([_dead_letter(doc) for doc in docs])


def mark_replayed(db: Database[dict[str, Any]], key: str, at: datetime, to: str) -> None:
    """Records that dead letter `key` was re-produced, at `at`, as Kafka record `to`."""
    db[DEAD_LETTERS].update_one({"_id": key}, {"$set": {"replayed_at": at, "replayed_to": to}})
