"""Prometheus metrics of the ingestion API, in a registry per app instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["IngestMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class IngestMetrics:
    """Order outcomes and Kafka produce latency; HTTP metrics come from the instrumentator."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.orders = Counter(
            "shopstream_orders_total",
            "Orders received, by outcome (accepted, invalid, unknown_id, unavailable).",
            ["outcome"],
            registry=registry,
        )
        self.produce_seconds = Histogram(
            "shopstream_kafka_produce_seconds",
            "Time from produce to the broker's acknowledgement of a request's records.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.produce_failures = Counter(
            "shopstream_kafka_produce_failures_total",
            "Records the broker did not acknowledge.",
            ["reason"],
            registry=registry,
        )
