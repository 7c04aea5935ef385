"""What the streaming job has done, read from outside it: checkpoints, Kafka, MongoDB.

- A query's checkpoint (`<checkpoints>/<query>`): `offsets/N` is written when batch N is planned
  (line 2 holds `batchTimestampMs`, the trigger time; line 3 the end offsets per partition) and
  `commits/N` when it is done. Their modification times date those two moments. Spark keeps only
  the last 100 batches (`spark.sql.streaming.minBatchesToRetain`), so a reader polls.
- Kafka: the end offsets of the orders topic, i.e. what has been produced.
- The store: the job's ledger (`store.status.finished_batches`, one record per micro-batch)
  and, per order, the batch that inserted it (`store.orders.inserting_batches`).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from confluent_kafka import Consumer, TopicPartition

from shopstream.config import Settings
from shopstream.store.protocols import Store

__all__ = [
    "Checkpoint",
    "CheckpointBatch",
    "KafkaEnds",
    "LedgerBatch",
    "read_ledger",
]


@dataclass(frozen=True)
class CheckpointBatch:
    batch_id: int
    trigger_at: float  # batchTimestampMs: when the trigger fired (wall clock, s)
    planned_at: float  # offsets/N written: end offsets chosen, the batch is about to run
    end_offset: int  # sum over partitions of the batch's end offsets
    committed_at: float | None = None  # commits/N written: the batch is done


class Checkpoint:
    """One query's checkpoint directory (local file system only)."""

    def __init__(self, settings: Settings, query: str) -> None:
        url = urlparse(f"{settings.checkpoints}/{query}")
        if url.scheme not in ("", "file"):
            raise ValueError(f"the benchmark reads local checkpoints only, not {url.geturl()}")
        self.path = Path(url.path)

    def query_id(self) -> str | None:
        """The query's id (stable across restarts: the ledger's series)."""
        try:
            return str(json.loads((self.path / "metadata").read_text())["id"])
        except (OSError, ValueError, KeyError):
            return None

    def _ids(self, folder: str) -> list[int]:
        try:
            return sorted(int(p.name) for p in (self.path / folder).iterdir() if p.name.isdigit())
        except FileNotFoundError:
            return []

    def _batch(self, batch_id: int) -> CheckpointBatch | None:
        path = self.path / "offsets" / str(batch_id)
        try:
            mtime = path.stat().st_mtime
            lines = path.read_text().splitlines()
            meta, offsets = json.loads(lines[1]), json.loads(lines[2])
        except (OSError, ValueError, IndexError):
            return None  # deleted by Spark's cleanup, or being written
        end = sum(int(o) for parts in offsets.values() for o in parts.values())
        return CheckpointBatch(batch_id, meta["batchTimestampMs"] / 1000, mtime, end)

    def committed_offset(self) -> int:
        """Records the query has finished: end offsets of its last committed batch."""
        for batch_id in reversed(self._ids("commits")):
            batch = self._batch(batch_id)
            if batch is not None:
                return batch.end_offset
        return 0

    def poll(self, known: dict[int, CheckpointBatch]) -> None:
        """Adds batches not seen yet to `known` and dates the commits of those seen."""
        commits = set(self._ids("commits"))
        for batch_id in self._ids("offsets"):
            if batch_id not in known:
                batch = self._batch(batch_id)
                if batch is None:
                    continue
                known[batch_id] = batch
            batch = known[batch_id]
            if batch.committed_at is None and batch_id in commits:
                with contextlib.suppress(OSError):
                    mtime = (self.path / "commits" / str(batch_id)).stat().st_mtime
                    known[batch_id] = CheckpointBatch(
                        batch_id, batch.trigger_at, batch.planned_at, batch.end_offset, mtime
                    )


class KafkaEnds:
    """The sum of the end offsets (records produced so far) of the orders topic."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.orders_topic
        self.partitions = range(settings.topic_partitions)
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_servers,
                "group.id": f"{settings.orders_topic}-bench-lag",
                "enable.auto.commit": False,
            }
        )

    def end_offset(self) -> int:
        return sum(
            self.consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=5, cached=False
            )[1]
            for p in self.partitions
        )

    def close(self) -> None:
        self.consumer.close()


@dataclass(frozen=True)
class LedgerBatch:
    """A `stream_batches` document, times as wall-clock seconds."""

    query_id: str
    batch_id: int
    records: int
    new_orders: int
    buckets: int
    attempts: int
    called_at: float  # foreachBatch entered: finished_at - duration_s
    started_at: float  # after the batch was read from Kafka and counted
    orders_written_at: float
    finished_at: float  # after dead letters and rollups
    duration_s: float
    sink_s: dict[str, float]  # per phase of the slowest task (transform, orders, markers, ...)


def _ts(value: datetime) -> float:
    return value.timestamp()


def read_ledger(store: Store, query_id: str) -> dict[int, LedgerBatch]:
    """The finished batches of one query, by batch id."""
    found = {}
    for b in store.status.finished_batches(query_id):
        finished = _ts(b.finished_at)
        found[b.batch_id] = LedgerBatch(
            query_id=b.query_id,
            batch_id=b.batch_id,
            records=b.records,
            new_orders=b.outcome.get("new_orders", 0),
            buckets=b.outcome.get("rollup_documents", b.outcome.get("buckets", 0)),
            attempts=b.attempts,
            called_at=finished - b.duration_s,
            started_at=_ts(b.started_at),
            orders_written_at=_ts(b.outcome["orders_written_at"]),
            finished_at=finished,
            duration_s=b.duration_s,
            sink_s=b.outcome.get("sink_s", {}),
        )
    return found
