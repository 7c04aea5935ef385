"""One long-lived idempotent Kafka producer per process, awaitable from asyncio.

`send_many` resolves only when the broker has acknowledged every record (acks=all) or the
record failed; callers answer 202 on the first outcome only. librdkafka's delivery
callbacks are served on the event loop (see `OrderProducer`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from shopstream.config import Settings
from shopstream.messaging.clients import producer_config

__all__ = ["OrderProducer", "ProduceError", "Record"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes
    value: bytes


class ProduceError(Exception):
    """A record the broker did not acknowledge; `retryable` says whether to retry later."""

    def __init__(self, reason: str, kind: str, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # a short, bounded label for metrics
        self.retryable = retryable


# What the deadline leaves of the produce timeout for answering: the timer's lateness on a busy
# event loop, the response, the client's side. 0.2 s left 2 of 86 answers 40 ms over 5 s with
# 32 clients, the streaming job and the broker's restart on 2 cores (docs/reliability.md).
_ANSWER_MARGIN_S = 0.5
_PERMANENT = {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError._INVALID_ARG, KafkaError.INVALID_RECORD}


class _Batch:
    """Counts down acknowledgements of one call; resolves its future at the end."""

    __slots__ = ("acked", "errors", "future", "owner", "remaining")

    def __init__(self, owner: OrderProducer, future: asyncio.Future[None], size: int) -> None:
        self.owner = owner
        self.future = future
        self.remaining = size
        self.errors: list[ProduceError | None] = [None] * size
        self.acked = [False] * size

    def delivered(self, index: int, err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            self.errors[index] = ProduceError(
                err.str(), err.name().lstrip("_").lower(), retryable=err.code() not in _PERMANENT
            )
        else:
            self.acked[index] = True
        self.owner.in_flight -= 1
        self._count_down()

    def abandon(self, index: int, error: ProduceError) -> None:
        self.errors[index] = error
        self._count_down()

    def expire(self) -> None:
        """The deadline passed: records still unacknowledged count as failed."""
        for i, err in enumerate(self.errors):
            if err is None and not self.acked[i]:
                self.errors[i] = ProduceError("broker acknowledgement timed out", "ack_timeout")
        if not self.future.done():
            self.future.set_result(None)

    def _count_down(self) -> None:
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(None)


class OrderProducer:
    """Wraps `confluent_kafka.Producer` for asyncio callers.

    Delivery reports are served on the event loop: while records are in flight a small task
    calls `poll(0)` every millisecond, so callbacks run on the loop thread with no locks,
    no thread hand-offs and no GIL contention (docs/benchmarks.md measured the thread
    variant ~10% slower). Idle, it costs nothing.
    """

    def __init__(self, settings: Settings, config: dict[str, Any] | None = None) -> None:
        self._timeout = settings.produce_timeout_s
        conf = {**producer_config(settings, client_id="shopstream-api"), **(config or {})}
        conf["error_cb"] = self._on_error
        self._producer = Producer(conf)
        self.in_flight = 0
        self._pump: asyncio.Task[None] | None = None
        self.fatal_error: str | None = None

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal_error = err.str()
            log.error("kafka producer fatal error error=%s", err.str())
        else:
            log.warning("kafka producer error error=%s", err.str())

    async def _run_pump(self) -> None:
        while self.in_flight > 0:
            self._producer.poll(0)
            await asyncio.sleep(0.001)

    def _ensure_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    async def send_many(self, records: Sequence[Record]) -> list[ProduceError | None]:
        """Produces the records; one entry per record: None if acknowledged, else the error."""
        if not records:
            return []
        if self.fatal_error is not None:
            return [ProduceError(f"producer unusable: {self.fatal_error}", "fatal")] * len(records)
        batch = _Batch(self, asyncio.get_running_loop().create_future(), len(records))
        # Leave a little of the budget for answering, so the client hears back within it.
        deadline = time.monotonic() + self._timeout - _ANSWER_MARGIN_S
        for i, rec in enumerate(records):
            await self._produce(rec, batch, i, deadline)
        self._ensure_pump()
        if not batch.future.done():
            # A plain timer rather than asyncio.wait_for: no extra task per request.
            loop = asyncio.get_running_loop()
            timer = loop.call_at(loop.time() + deadline - time.monotonic(), batch.expire)
            await batch.future
            timer.cancel()
        if batch.remaining:
            log.warning("kafka acknowledgement timed out records=%d", batch.remaining)
        return list(batch.errors)

    async def _produce(self, rec: Record, batch: _Batch, index: int, deadline: float) -> None:
        callback = partial(batch.delivered, index)
        while True:
            try:
                self._producer.produce(rec.topic, rec.value, rec.key, on_delivery=callback)
                self.in_flight += 1
                return
            except BufferError:
                # The local queue is full: the broker is slow or away. Wait, within the deadline.
                if time.monotonic() >= deadline:
                    batch.abandon(index, ProduceError("producer queue full", "queue_full"))
                    return
                self._ensure_pump()
                await asyncio.sleep(0.01)
            except KafkaException as exc:
                batch.abandon(index, ProduceError(str(exc), "rejected", retryable=False))
                return

    def ping(self, topic: str, timeout: float = 2.0) -> None:
        """Raises unless the cluster answers a metadata request for `topic`."""
        meta = self._producer.list_topics(topic, timeout=timeout)
        err = meta.topics[topic].error
        if err is not None:
            raise KafkaException(err)

    def close(self, timeout: float = 10.0) -> int:
        """Flushes what is in flight (on the caller's thread); returns the records left."""
        if self._pump is not None:
            self._pump.cancel()
        left = self._producer.flush(timeout)
        if left:
            log.error("kafka producer closed with undelivered records count=%d", left)
        return int(left)
