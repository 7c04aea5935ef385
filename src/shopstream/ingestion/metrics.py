"""Prometheus metrics of the ingestion API, in a registry per app instance.

The HTTP metrics come from a small pure-ASGI middleware rather than an instrumentation
library: on `POST /order` every microsecond counts (see docs/benchmarks.md), and caching
the labelled children keeps the cost to two dictionary lookups per request.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HttpMetricsMiddleware", "IngestMetrics"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class IngestMetrics:
    """Requests, order outcomes and Kafka produce latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "shopstream_http_requests",
            "HTTP requests, by route template, method and status.",
            ["handler", "method", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "shopstream_http_request_duration_seconds",
            "HTTP request latency, by route template.",
            ["handler"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.orders = Counter(
            "shopstream_orders",
            "Orders received, by outcome (accepted, invalid, unknown_id, unavailable).",
            ["outcome"],
            registry=registry,
        )
        # Labelled children resolved once: `.labels()` on every request is measurable.
        self.outcome = {
            name: self.orders.labels(name)
            for name in ("accepted", "invalid", "unknown_id", "unavailable")
        }
        self.produce_seconds = Histogram(
            "shopstream_kafka_produce_seconds",
            "Time from produce to the broker's acknowledgement of a request's records.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.produce_failures = Counter(
            "shopstream_kafka_produce_failures",
            "Records the broker did not acknowledge, by reason.",
            ["reason"],
            registry=registry,
        )


class HttpMetricsMiddleware:
    """Counts and times HTTP requests by route template (unmatched paths are one label)."""

    def __init__(self, app: ASGIApp, metrics: IngestMetrics, skip: tuple[str, ...] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.skip = set(skip)
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            handler = getattr(route, "path", "unmatched")
            self._timer(handler).observe(time.perf_counter() - started)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self._counter(handler, method, status).inc()

    def _counter(self, handler: str, method: str, status: int) -> Any:
        key = (handler, method, status)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = self.metrics.requests.labels(handler, method, str(status))
        return child

    def _timer(self, handler: str) -> Any:
        child = self._timers.get(handler)
        if child is None:
            child = self._timers[handler] = self.metrics.request_seconds.labels(handler)
        return child
