"""The Pipeline health page: services, stream lag, the last batches, dead letters, the lake, the
API's request rates. Each read is small: the supervisor's process list (or a probe of an
external service), a few `stream_status` and `rollup_total` documents by `_id`, Kafka's end
offsets, the lake's commit log and watermark file, and the API's `/metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from pymongo.database import Database

from shopstream.domain.documents import (
    ENRICH_STATUS,
    ROLLUP_TOTAL,
    STREAM_STATUS,
    TOTAL_KEY,
    query_status_key,
)

__all__ = [
    "QUERIES",
    "REPLAY_COMMAND",
    "ApiRates",
    "ApiSample",
    "BatchSummary",
    "LakeState",
    "QueryLag",
    "api_sample",
    "dead_letters",
    "end_offsets",
    "lake_state",
    "last_batches",
    "query_lag",
]

QUERIES = ("enrich", "lake")
REPLAY_COMMAND = "shopstream dlq replay"


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


@dataclass(frozen=True)
class LakeState:
    files: int
    days: list[str]
    complete_through: str | None
    watermark: str | None


def end_offsets(consumer: Consumer, topic: str, timeout_s: float = 5.0) -> dict[str, int]:
    """Kafka's end offset of each partition of `topic` (partition as a string)."""
    meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if meta is None or meta.error is not None:
        raise KafkaException(f"topic {topic} not found")
    out = {}
    for partition in meta.partitions:
        _, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout_s, cached=False
        )
        out[str(partition)] = int(high)
    return out


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


def dead_letters(db: Database[dict[str, Any]]) -> dict[str, int]:
    """Dead letters received, by reason (from the all-time rollup)."""
    doc = db[ROLLUP_TOTAL].find_one({"_id": TOTAL_KEY}, {"dead_letters": 1}) or {}
    return {e["reason"]: int(e["dead_letters"]) for e in doc.get("dead_letters", [])}


def lake_state(
    files: Callable[[], list[str]], watermark: Callable[[], dict[str, Any] | None]
) -> LakeState:
    """The lake's committed files (by day) and its watermark."""
    paths = files()
    days = sorted({p.split("dt=", 1)[1].split("/", 1)[0] for p in paths if "dt=" in p})
    mark = watermark() or {}
    return LakeState(len(paths), days, mark.get("complete_through"), mark.get("watermark"))


@dataclass(frozen=True)
class ApiSample:
    at: float
    requests: dict[str, float]  # status class ("2xx", "4xx", "5xx") -> count so far
    orders: dict[str, float]  # outcome -> orders so far


def api_sample(metrics_text: str, at: float | None = None) -> ApiSample:
    """The API's request counts by status class and order counts by outcome, from its
    Prometheus text (`/metrics`)."""
    requests: dict[str, float] = {}
    orders: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "shopstream_http_requests_total":
                status = f"{str(sample.labels.get('status', '?'))[:1]}xx"
                requests[status] = requests.get(status, 0.0) + sample.value
            elif sample.name == "shopstream_orders_total":
                outcome = str(sample.labels.get("outcome", "?"))
                orders[outcome] = orders.get(outcome, 0.0) + sample.value
    return ApiSample(time.monotonic() if at is None else at, requests, orders)


class ApiRates:
    """Per-second rates between the last two samples of the API's `/metrics`."""

    def __init__(self, url: str, fetch: Callable[[str], str] | None = None) -> None:
        self.url = url
        self.fetch = fetch or (lambda u: httpx.get(u, timeout=3).raise_for_status().text)
        self._last: ApiSample | None = None

    def sample(self) -> tuple[dict[str, float], dict[str, float]] | None:
        """(requests/s by status class, orders/s by outcome) since the previous call; None the
        first time (no interval yet)."""
        now = api_sample(self.fetch(self.url))
        last, self._last = self._last, now
        if last is None or now.at <= last.at:
            return None
        span = now.at - last.at

        def rate(new: dict[str, float], old: dict[str, float]) -> dict[str, float]:
            out = {}
            for key, value in new.items():
                before = old.get(key, 0.0)
                # A restarted API counts from zero again: then all of `value` is new.
                out[key] = (value - before if value >= before else value) / span
            return out

        return rate(now.requests, last.requests), rate(now.orders, last.orders)
