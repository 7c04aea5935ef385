"""What the streaming job reports about itself in the store, read for the Pipeline health page
and the demo: each query's last progress, the last batches, dead letters by reason. A few
`stream_status` and `rollup_total` documents by `_id`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.database import Database

from shopstream.domain.documents import (
    ENRICH_STATUS,
    ROLLUP_TOTAL,
    STREAM_STATUS,
    TOTAL_KEY,
    query_status_key,
)
from shopstream.store.errors import translated

__all__ = ["BatchSummary", "QueryLag", "dead_letters", "last_batches", "query_lag"]


@dataclass(frozen=True)
class QueryLag:
    name: str
    batch_id: int | None
    trigger_at: datetime | None
    input_rows: int
    duration_ms: int
    lag: int | None  # records in Kafka not yet read by the query (None: unknown)
    partitions: dict[str, int] = field(default_factory=dict)  # partition -> lag


@dataclass(frozen=True)
class BatchSummary:
    finished_at: datetime | None
    records: int
    new_orders: int
    dead_letters: int
    duration_s: float | None
    recent: list[dict[str, Any]]  # the last batches with records: at, records, e2e_p50_s, ...


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
def last_batches(db: Database[dict[str, Any]]) -> BatchSummary:
    doc = db[STREAM_STATUS].find_one({"_id": ENRICH_STATUS}) or {}
    return BatchSummary(
        finished_at=doc.get("finished_at"),
        records=int(doc.get("records", 0)),
        new_orders=int(doc.get("new_orders", 0)),
        dead_letters=int(doc.get("dead_letters", 0)),
        duration_s=doc.get("duration_s"),
        recent=list(doc.get("recent", [])),
    )


@translated
def dead_letters(db: Database[dict[str, Any]]) -> dict[str, int]:
    """Dead letters received, by reason (from the all-time rollup)."""
    doc = db[ROLLUP_TOTAL].find_one({"_id": TOTAL_KEY}, {"dead_letters": 1}) or {}
    return {e["reason"]: int(e["dead_letters"]) for e in doc.get("dead_letters", [])}
