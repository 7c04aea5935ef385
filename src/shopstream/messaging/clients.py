"""Kafka client configurations: the producer of the API, the streaming job and the DLQ replay
(the readiness probe in `messaging.topics` builds its own)."""

from __future__ import annotations

import logging
from typing import Any

from shopstream.config import Settings

__all__ = ["producer_config"]


# How long librdkafka keeps trying to deliver a record. Not the API's answer time (the API
# answers 503 at its own deadline, `produce_timeout_s`, and the record may still land; the
# client's retry with the same order id is deduplicated downstream): a record that times out
# inside librdkafka makes the idempotent producer bump its epoch, and records in flight then
# may be written twice (librdkafka #4953; seen with a 4.5 s timeout across a broker's
# fail-over). Two minutes outlasts any fail-over of the cluster.
MESSAGE_TIMEOUT_MS = 120_000


def producer_config(settings: Settings, client_id: str, logger: bool = True) -> dict[str, Any]:
    """An idempotent, `acks=all` producer that keeps trying for two minutes (callers bound
    their own waits). `logger=False` leaves out the logging hook (for configs shipped to
    Spark executors, which add their own)."""
    timeout_ms = int(settings.produce_timeout_s * 1000)
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_servers,
        "client.id": client_id,
        "enable.idempotence": True,  # implies acks=all and ordered, non-duplicated retries
        "acks": "all",
        "linger.ms": settings.producer_linger_ms,
        "compression.type": "lz4",
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
        # A request a broker leaves unanswered is retried (same sequence numbers: no double).
        "request.timeout.ms": max(1000, timeout_ms - 1000),
        "queue.buffering.max.messages": 500_000,
    }
    if logger:
        config["logger"] = logging.getLogger("librdkafka")
    return config
