"""The FastAPI application: `create_app(settings)` wires clients once per process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from psycopg_pool import AsyncConnectionPool

from shopstream.config import Settings, get_settings
from shopstream.db import migrate
from shopstream.ingestion.contract import with_request_bodies
from shopstream.ingestion.guards import ApiKeys, RateLimiter
from shopstream.ingestion.intake import OrderIntake
from shopstream.ingestion.known_ids import KnownIds
from shopstream.ingestion.metrics import HttpMetricsMiddleware, IngestMetrics
from shopstream.ingestion.producer import OrderProducer
from shopstream.ingestion.routes import router
from shopstream.ingestion.state import AppState
from shopstream.messaging import ensure_topics

__all__ = ["create_app"]

log = logging.getLogger(__name__)
T = TypeVar("T")


async def _with_retries(what: str, step: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
    """Waits for a dependency with bounded retries, then fails loudly."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await step()
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"gave up waiting for {what} after {timeout:.0f}s: {exc}"
                ) from exc
            log.warning("waiting for %s error=%s", what, exc)
            await asyncio.sleep(1)


def _tune_gc() -> None:
    """Moves start-up objects (id caches, modules) out of the collector's way.

    Request handling allocates many short-lived objects; with the default thresholds the
    cyclic collector rescans the large, long-lived id sets over and over (a third of the
    CPU of `POST /orders`, see docs/benchmarks.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1_000)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _with_retries(
            "PostgreSQL migrations", lambda: asyncio.to_thread(migrate, settings.postgres_url)
        )
        await _with_retries("Kafka topics", lambda: asyncio.to_thread(ensure_topics, settings))
        pool = AsyncConnectionPool(settings.postgres_url, min_size=1, max_size=8, open=False)
        await pool.open(wait=True, timeout=30)
        customers, products = KnownIds(pool, "customers"), KnownIds(pool, "products")
        await customers.refresh()
        await products.refresh()
        log.info("id cache loaded customers=%d products=%d", len(customers), len(products))
        producer = OrderProducer(settings)
        intake = OrderIntake(
            settings.orders_topic, producer, customers, products, metrics, settings.clock.now
        )
        app.state.shopstream = AppState(
            settings,
            intake,
            producer,
            pool,
            ApiKeys(settings.api_key_list),
            RateLimiter(settings.rate_limit),
        )
        refreshers = [
            asyncio.create_task(ids.keep_fresh(settings.id_cache_refresh_s))
            for ids in (customers, products)
        ]
        _tune_gc()
        try:
            yield
        finally:
            for task in refreshers:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*refreshers)
            producer.close()  # on the loop thread: delivery callbacks touch loop futures
            await pool.close()

    app = FastAPI(
        title="shopstream ingestion API",
        version="1",
        summary="Takes e-commerce orders and hands them durably to Kafka.",
        lifespan=lifespan,
    )
    app.include_router(router)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics, skip=("/metrics",))
    fastapi_openapi = app.openapi  # builds the document once, then returns it cached

    def openapi() -> dict[str, Any]:
        return with_request_bodies(fastapi_openapi(), settings.max_batch_orders)

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
