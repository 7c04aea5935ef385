"""The Pipeline health page: services, stream lag, the last batches, dead letters, the lake, the
API's request rates. Each read is small: the supervisor's process list (or a probe of an
external service), Kafka's end offsets, the lake's commit log and watermark file, and the API's
`/metrics`; the store's status documents are read by `store.stream_status`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "QUERIES",
    "REPLAY_COMMAND",
    "ApiRates",
    "ApiSample",
    "LakeState",
    "api_sample",
    "end_offsets",
    "lake_state",
]

QUERIES = ("enrich", "lake")
REPLAY_COMMAND = "shopstream dlq replay"


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


def lake_state(
    files: Callable[[], list[str]],
    watermark: Callable[[], dict[str, Any] | None],
    compacted: Callable[[], list[str]] = list,
) -> LakeState:
    """The files the lake's log names (by day), the days compacted (older days are only
    there once the log keeps a week: decision 49), and its watermark."""
    paths = files()
    logged = {p.split("dt=", 1)[1].split("/", 1)[0] for p in paths if "dt=" in p}
    days = sorted(logged | set(compacted()))
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
