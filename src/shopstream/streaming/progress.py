"""Where the streaming job says how it is doing, for the dashboard (`stream_status`).

- `"query:<name>"` (one per query, from its progress events): the last trigger's batch id, time,
  input rows and duration, and the Kafka offsets it read up to (`end_offsets`, by topic and
  partition). The lag of a query is Kafka's end offsets minus these.
- `"enrich"` (written by the enrichment's `foreachBatch`): the last micro-batch that wrote
  orders (when, records, new orders, dead letters, duration) and the newest order time seen.

Point lookups by `_id`; writing them never fails a query (the next batch writes again).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from py4j.protocol import Py4JError
from pymongo.errors import PyMongoError
from pyspark.sql.streaming import StreamingQuery

from shopstream.domain.documents import STREAM_STATUS, query_status_key
from shopstream.store.client import connect

__all__ = ["ProgressPoller", "ProgressPublisher", "progress_document"]

log = logging.getLogger(__name__)

Progress = Mapping[str, Any]  # a query's progress, as `StreamingQuery.lastProgress` gives it


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


class ProgressPublisher:
    """Writes each query's latest progress to `stream_status` (driver side)."""

    def __init__(self, mongo_url: str, database: str) -> None:
        self.client = connect(mongo_url, app="shopstream-stream")
        self.coll = self.client[database][STREAM_STATUS]

    def __call__(self, progress: Progress) -> None:
        try:
            doc = progress_document(progress)
            self.coll.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        except (PyMongoError, ValueError, TypeError, KeyError):  # never fail a query for it
            log.warning("could not publish the progress of a query", exc_info=True)


class ProgressPoller:
    """Hands each query's newest progress, once, to the publishers (the status document, the
    lake watermark), when the driver's run loop polls it (about once a second).

    Why not a `StreamingQueryListener`: PySpark turns every event into a Python object through
    dozens of py4j calls, each a failed class lookup across Spark's jars; with a batch every
    0.5 s that cost the driver's JVM ~0.8 of this machine's 2 cores (docs/benchmarks.md).
    `lastProgress` is one call and a JSON document. A progress skipped between two polls is
    superseded by the next: publishers keep only the latest state.
    """

    def __init__(self, publishers: Sequence[Callable[[Progress], None]]) -> None:
        self.publishers = list(publishers)
        self._seen: dict[str, tuple[Any, ...]] = {}

    def poll(self, queries: Iterable[StreamingQuery]) -> int:
        """Publishes the progress of each query that made some since the last poll; returns
        how many did."""
        published = 0
        for query in queries:
            try:
                progress = query.lastProgress
            except Py4JError:  # the query or session is going away
                continue
            if not progress:
                continue
            key = (progress.get("runId"), progress.get("batchId"), progress.get("timestamp"))
            if self._seen.get(str(progress.get("name"))) == key:
                continue
            self._seen[str(progress.get("name"))] = key
            for publish in self.publishers:
                publish(progress)
            published += 1
        return published
