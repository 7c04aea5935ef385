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
from datetime import UTC, datetime
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError
from pyspark.sql.streaming import StreamingQueryListener

from shopstream.domain.documents import STREAM_STATUS, query_status_key

__all__ = ["ProgressListener", "ProgressPublisher", "progress_document"]

log = logging.getLogger(__name__)


def progress_document(progress: Any) -> dict[str, Any]:
    """What a query's progress event says, as the `stream_status` document of the query."""
    sources = progress.sources or []
    end: dict[str, dict[str, int]] = {}
    for source in sources:
        offsets = json.loads(source.endOffset) if source.endOffset else {}
        for topic, partitions in (offsets if isinstance(offsets, dict) else {}).items():
            end.setdefault(topic, {}).update({str(p): int(o) for p, o in partitions.items()})
    return {
        "_id": query_status_key(progress.name),
        "name": progress.name,
        "query_id": str(progress.id),
        "batch_id": progress.batchId,
        "trigger_at": datetime.fromisoformat(progress.timestamp.replace("Z", "+00:00")),
        "input_rows": progress.numInputRows,
        "input_rows_per_s": round(float(progress.inputRowsPerSecond or 0.0), 1),
        "processed_rows_per_s": round(float(progress.processedRowsPerSecond or 0.0), 1),
        "duration_ms": int((progress.durationMs or {}).get("triggerExecution", 0)),
        "end_offsets": end,
        "published_at": datetime.now(UTC),
    }


class ProgressListener(StreamingQueryListener):
    """A listener that only acts on progress events (Spark requires all four methods)."""

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark's listener API
        pass

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        pass


class ProgressPublisher(ProgressListener):
    """Writes each query's latest progress to `stream_status` (driver side)."""

    def __init__(self, mongo_url: str, database: str) -> None:
        self.client: MongoClient[dict[str, Any]] = MongoClient(mongo_url, tz_aware=True)
        self.coll = self.client[database][STREAM_STATUS]

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        try:
            doc = progress_document(event.progress)
            self.coll.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        except (PyMongoError, ValueError, TypeError):  # never fail a query for its status
            log.warning("could not publish the progress of a query", exc_info=True)
