"""What the routes need, built once per process by the app's lifespan."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from shopstream.config import Settings
from shopstream.ingestion.guards import ApiKeys, RateLimiter
from shopstream.ingestion.intake import OrderIntake
from shopstream.ingestion.producer import OrderProducer

__all__ = ["AppState"]


@dataclass
class AppState:
    settings: Settings
    intake: OrderIntake
    producer: OrderProducer
    pool: AsyncConnectionPool
    api_keys: ApiKeys
    limiter: RateLimiter

    async def kafka_ready(self) -> None:
        if self.producer.fatal_error:
            raise RuntimeError(self.producer.fatal_error)
        await asyncio.to_thread(self.producer.ping, self.settings.orders_topic)

    async def postgres_ready(self) -> None:
        async with self.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
