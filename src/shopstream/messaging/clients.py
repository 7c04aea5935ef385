"""Kafka client configurations: the producer of the API, the streaming job and the DLQ replay
(the readiness probe in `messaging.topics` builds its own)."""

from __future__ import annotations

import logging
from typing import Any

from shopstream.config import Settings

__all__ = ["producer_config"]


def producer_config(settings: Settings, client_id: str, logger: bool = True) -> dict[str, Any]:
    """An idempotent, `acks=all` producer whose deliveries are decided within the produce
    timeout. `logger=False` leaves out the logging hook (for configs shipped to Spark
    executors, which add their own)."""
    timeout_ms = int(settings.produce_timeout_s * 1000)
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_servers,
        "client.id": client_id,
        "enable.idempotence": True,  # implies acks=all and ordered, non-duplicated retries
        "acks": "all",
        "linger.ms": settings.producer_linger_ms,
        "compression.type": "lz4",
        # Leave headroom so the broker's verdict arrives before the caller's deadline.
        "message.timeout.ms": max(1000, timeout_ms - 500),
        "request.timeout.ms": max(1000, timeout_ms - 1000),
        "queue.buffering.max.messages": 500_000,
    }
    if logger:
        config["logger"] = logging.getLogger("librdkafka")
    return config
