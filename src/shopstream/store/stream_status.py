"""What the streaming job reports about itself in the store; read for the Pipeline health page
and the demo (each query's last progress, the last batches, dead letters by reason) by a few
`_id` lookups.

- `stream_batches`: one document per micro-batch (`BatchLedger`): timings and attempts.
- `stream_status` `"query:<name>"` (`ProgressPublisher`, one per query, from its progress): the
  last trigger's batch id, time, input rows and duration, and the Kafka offsets it read up to
  (`end_offsets`, by topic and partition). The lag of a query is Kafka's end offsets minus
  these.
- `stream_status` `"enrich"` (`EnrichStatus`, written by the enrichment's `foreachBatch`): the
  last micro-batch that wrote orders (when, records, new orders, dead letters, duration) and
  the newest order time seen.

Writing the status documents never fails a query (the next batch writes again).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import PyMongoError

from shopstream.domain.documents import (
    ENRICH_STATUS,
    ROLLUP_TOTAL,
    STREAM_BATCHES,
    STREAM_STATUS,
    TOTAL_KEY,
    batch_key,
    batch_range,
    query_status_key,
)
from shopstream.store.errors import translated
from shopstream.store.protocols import BatchOutcome
from shopstream.store.records import BatchRecord, BatchSummary, QueryLag, QueryProgress

__all__ = [
    "BatchLedger",
    "EnrichStatus",
    "Progress",
    "dead_letters",
    "enrich_status",
    "finished_batches",
    "last_batches",
    "open_batches",
    "progress_document",
    "publish_progress",
    "query_lag",
    "query_progress",
]

log = logging.getLogger(__name__)

Progress = Mapping[str, Any]  # a query's progress, as `StreamingQuery.lastProgress` gives it


@translated
def query_progress(db: Database[dict[str, Any]], name: str) -> QueryProgress | None:
    """The last progress query `name` published (None until it did)."""
    doc = db[STREAM_STATUS].find_one({"_id": query_status_key(name)})
    if doc is None:
        return None
    return QueryProgress(
        name=name,
        batch_id=doc.get("batch_id"),
        trigger_at=doc.get("trigger_at"),
        input_rows=int(doc.get("input_rows") or 0),
        duration_ms=int(doc.get("duration_ms") or 0),
        end_offsets={
            topic: {str(p): int(o) for p, o in parts.items()}
            for topic, parts in (doc.get("end_offsets") or {}).items()
        },
    )


@translated
def query_lag(
    db: Database[dict[str, Any]], name: str, topic: str, ends: Mapping[str, int] | None
) -> QueryLag:
    """How far a query is behind Kafka: end offsets minus the offsets its last trigger read
    up to (from its checkpointed progress)."""
    doc = db[STREAM_STATUS].find_one({"_id": query_status_key(name)}) or {}
    read = doc.get("end_offsets", {}).get(topic, {})
    partitions = (
        {p: max(0, end - int(read.get(p, 0))) for p, end in ends.items()}
        if ends is not None
        else {}
    )
    return QueryLag(
        name=name,
        batch_id=doc.get("batch_id"),
        trigger_at=doc.get("trigger_at"),
        input_rows=int(doc.get("input_rows", 0)),
        duration_ms=int(doc.get("duration_ms", 0)),
        lag=sum(partitions.values()) if ends is not None else None,
        partitions=partitions,
    )


@translated
def enrich_status(db: Database[dict[str, Any]]) -> dict[str, Any]:
    """The enrichment's status document (`EnrichStatus`; empty before its first batch)."""
    return db[STREAM_STATUS].find_one({"_id": ENRICH_STATUS}) or {}


@translated
def last_batches(db: Database[dict[str, Any]]) -> BatchSummary:
    doc = enrich_status(db)
    return BatchSummary(
        finished_at=doc.get("finished_at"),
        records=int(doc.get("records", 0)),
        new_orders=int(doc.get("new_orders", 0)),
        dead_letters=int(doc.get("dead_letters", 0)),
        duration_s=doc.get("duration_s"),
        recent=list(doc.get("recent", [])),
    )


_LEDGER_FIELDS = {"query_id", "batch_id", "attempts", "started_at", "finished_at", "duration_s"}


@translated
def finished_batches(
    db: Database[dict[str, Any]], query_id: str | None = None, since: datetime | None = None
) -> list[BatchRecord]:
    """The ledger's finished batches (of `query_id`; started at or after `since`)."""
    query: dict[str, Any] = {"duration_s": {"$exists": True}}
    if query_id is not None:
        query["_id"] = batch_range(query_id)
    if since is not None:
        query["started_at"] = {"$gte": since}
    return [
        BatchRecord(
            query_id=doc["query_id"],
            batch_id=int(doc["batch_id"]),
            attempts=int(doc.get("attempts", 1)),
            started_at=doc["started_at"],
            finished_at=doc["finished_at"],
            duration_s=float(doc["duration_s"]),
            records=int(doc.get("records", 0)),
            outcome={k: v for k, v in doc.items() if k not in _LEDGER_FIELDS | {"_id"}},
        )
        for doc in db[STREAM_BATCHES].find(query)
        if "finished_at" in doc
    ]


@translated
def open_batches(db: Database[dict[str, Any]]) -> list[tuple[str, int]]:
    """(query id, batch id) of the ledger's batches without `finished_at`."""
    cursor = db[STREAM_BATCHES].find({"finished_at": {"$exists": False}})
    return [(d["query_id"], int(d["batch_id"])) for d in cursor]


@translated
def dead_letters(db: Database[dict[str, Any]]) -> dict[str, int]:
    """Dead letters received, by reason (from the all-time rollup)."""
    doc = db[ROLLUP_TOTAL].find_one({"_id": TOTAL_KEY}, {"dead_letters": 1}) or {}
    return {e["reason"]: int(e["dead_letters"]) for e in doc.get("dead_letters", [])}


class BatchLedger:
    """One document per micro-batch in `stream_batches`: batch health, timings and attempts.

    A batch that finds its own document was started before and did not finish: Spark replays
    it with the same offsets (`attempts` counts them). Keys come from
    `domain.documents.batch_key`; the query id comes from the checkpoint, so a fresh checkpoint
    starts a new series instead of mistaking its batch 0 for a replay.
    """

    def __init__(self, db: Database[dict[str, Any]], keep: int = 2_000) -> None:
        self.coll = db[STREAM_BATCHES]
        self.keep = keep

    def begin(self, query_id: str, batch_id: int) -> bool:
        """Records the start of a batch (one round trip); True if this is a replay."""
        now = datetime.now(UTC)
        before = self.coll.find_one_and_update(
            {"_id": batch_key(query_id, batch_id)},
            {
                "$set": {"query_id": query_id, "batch_id": batch_id, "started_at": now},
                "$inc": {"attempts": 1},
            },
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        if batch_id % 100 == 0 and batch_id >= self.keep:
            old = batch_range(query_id) | {"$lt": batch_key(query_id, batch_id - self.keep)}
            self.coll.delete_many({"_id": old})
        return before is not None

    def finish(self, query_id: str, batch_id: int, **fields: Any) -> None:
        self.coll.update_one(
            {"_id": batch_key(query_id, batch_id)},
            {"$set": {**fields, "finished_at": datetime.now(UTC)}},
        )


class EnrichStatus:
    """The `stream_status` document of the enrichment: its last batch with records and the
    newest order time written so far (what the dashboard's freshness shows)."""

    def __init__(self, db: Database[dict[str, Any]], keep: int = 120) -> None:
        self.coll = db[STREAM_STATUS]
        self.keep = keep
        doc = self.coll.find_one({"_id": ENRICH_STATUS}) or {}
        self.newest: datetime | None = doc.get("newest_order_at")
        self.recent: list[dict[str, Any]] = list(doc.get("recent", []))

    def record(self, query_id: str, batch_id: int, batch: BatchOutcome, took: float) -> None:
        if not batch.records:
            return  # an empty trigger changes nothing worth a write
        if batch.newest and (self.newest is None or batch.newest > self.newest):
            self.newest = batch.newest
        now = datetime.now(UTC)
        lat = batch.latencies
        summary = {
            "at": now,
            "records": batch.records,
            "duration_s": round(took, 4),
            "e2e_p50_s": lat[len(lat) // 2] if lat else None,
            "e2e_p95_s": lat[int(len(lat) * 0.95)] if lat else None,
        }
        self.recent = [*self.recent[-(self.keep - 1) :], summary]
        self.coll.replace_one(
            {"_id": ENRICH_STATUS},
            {
                "_id": ENRICH_STATUS,
                "query_id": query_id,
                "batch_id": batch_id,
                "finished_at": now,
                "records": batch.records,
                "new_orders": batch.new,
                "dead_letters": batch.dead,
                "duration_s": round(took, 4),
                "newest_order_at": self.newest,
                "recent": self.recent,  # the last `keep` batches with records
            },
            upsert=True,
        )


def progress_document(progress: Progress) -> dict[str, Any]:
    """What a query's progress says, as the `stream_status` document of the query."""
    end: dict[str, dict[str, int]] = {}
    for source in progress.get("sources") or []:
        raw = source.get("endOffset")
        offsets = json.loads(raw) if isinstance(raw, str) and raw else raw
        for topic, partitions in (offsets if isinstance(offsets, dict) else {}).items():
            end.setdefault(topic, {}).update({str(p): int(o) for p, o in partitions.items()})
    return {
        "_id": query_status_key(progress["name"]),
        "name": progress["name"],
        "query_id": str(progress["id"]),
        "batch_id": progress["batchId"],
        "trigger_at": datetime.fromisoformat(progress["timestamp"].replace("Z", "+00:00")),
        "input_rows": progress.get("numInputRows"),
        "input_rows_per_s": round(float(progress.get("inputRowsPerSecond") or 0.0), 1),
        "processed_rows_per_s": round(float(progress.get("processedRowsPerSecond") or 0.0), 1),
        "duration_ms": int((progress.get("durationMs") or {}).get("triggerExecution", 0)),
        "end_offsets": end,
        "published_at": datetime.now(UTC),
    }


def publish_progress(db: Database[dict[str, Any]], progress: Progress) -> None:
    """Writes a query's latest progress to `stream_status` (driver side); never raises."""
    try:
        doc = progress_document(progress)
        db[STREAM_STATUS].replace_one({"_id": doc["_id"]}, doc, upsert=True)
    except (PyMongoError, ValueError, TypeError, KeyError):  # never fail a query for it
        log.warning("could not publish the progress of a query", exc_info=True)
