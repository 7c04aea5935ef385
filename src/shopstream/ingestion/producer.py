"""One long-lived idempotent Kafka producer per process, awaitable from asyncio.

`send_many` resolves only when the broker has acknowledged every record (acks=all) or the
record failed; callers answer 202 on the first outcome only. librdkafka's delivery
callbacks run on a poll thread and resolve the waiting future through the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from shopstream.config import Settings

__all__ = ["OrderProducer", "ProduceError", "Record", "producer_config"]

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


def producer_config(settings: Settings) -> dict[str, Any]:
    timeout_ms = int(settings.produce_timeout_s * 1000)
    return {
        "bootstrap.servers": settings.kafka_servers,
        "client.id": "shopstream-api",
        "logger": logging.getLogger("librdkafka"),
        "enable.idempotence": True,  # implies acks=all and ordered, non-duplicated retries
        "acks": "all",
        "linger.ms": settings.producer_linger_ms,
        "compression.type": "lz4",
        # Leave headroom so the broker's verdict arrives before the HTTP deadline.
        "message.timeout.ms": max(1000, timeout_ms - 500),
        "request.timeout.ms": max(1000, timeout_ms - 1000),
        "queue.buffering.max.messages": 500_000,
    }


_PERMANENT = {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError._INVALID_ARG, KafkaError.INVALID_RECORD}


class _Batch:
    """Counts down acknowledgements of one call; wakes the caller once, at the end."""

    __slots__ = ("errors", "future", "lock", "loop", "remaining")

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.remaining = size
        self.errors: list[ProduceError | None] = [None] * size
        self.lock = threading.Lock()

    def delivered(self, index: int, err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            self.errors[index] = ProduceError(
                err.str(), err.name().lstrip("_").lower(), retryable=err.code() not in _PERMANENT
            )
        with self.lock:
            self.remaining -= 1
            last = self.remaining == 0
        if last:
            with contextlib.suppress(RuntimeError):  # the loop closed while we waited
                self.loop.call_soon_threadsafe(_resolve, self.future)

    def abandon(self, index: int, error: ProduceError) -> None:
        self.errors[index] = error
        with self.lock:
            self.remaining -= 1
            last = self.remaining == 0
        if last:
            _resolve(self.future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class OrderProducer:
    """Wraps `confluent_kafka.Producer` for asyncio callers."""

    def __init__(self, settings: Settings, config: dict[str, Any] | None = None) -> None:
        self._timeout = settings.produce_timeout_s
        conf = {**producer_config(settings), **(config or {})}
        conf["error_cb"] = self._on_error
        self._producer = Producer(conf)
        self._closed = threading.Event()
        self.fatal_error: str | None = None
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal_error = err.str()
            log.error("kafka producer fatal error error=%s", err.str())
        else:
            log.warning("kafka producer error error=%s", err.str())

    async def send(self, record: Record) -> None:
        (error,) = await self.send_many([record])
        if error is not None:
            raise error

    async def send_many(self, records: Sequence[Record]) -> list[ProduceError | None]:
        """Produces the records; one entry per record: None if acknowledged, else the error."""
        if not records:
            return []
        if self.fatal_error is not None:
            return [ProduceError(f"producer unusable: {self.fatal_error}", "fatal")] * len(records)
        batch = _Batch(asyncio.get_running_loop(), len(records))
        deadline = time.monotonic() + self._timeout
        for i, rec in enumerate(records):
            await self._produce(rec, partial(batch.delivered, i), batch, i, deadline)
        try:
            await asyncio.wait_for(asyncio.shield(batch.future), deadline - time.monotonic())
        except TimeoutError:
            pending = [i for i, e in enumerate(batch.errors) if e is None]
            log.warning("kafka acknowledgement timed out records=%d", len(pending))
            return [
                e or ProduceError("broker acknowledgement timed out", "ack_timeout")
                for e in batch.errors
            ]
        return list(batch.errors)

    async def _produce(
        self, rec: Record, callback: Any, batch: _Batch, index: int, deadline: float
    ) -> None:
        while True:
            try:
                self._producer.produce(rec.topic, rec.value, rec.key, on_delivery=callback)
                return
            except BufferError:
                # The local queue is full: the broker is slow or away. Wait, within the deadline.
                if time.monotonic() >= deadline:
                    batch.abandon(index, ProduceError("producer queue full", "queue_full"))
                    return
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
        """Flushes what is in flight, stops polling; returns the number of records left."""
        left = self._producer.flush(timeout)
        self._closed.set()
        self._poller.join(timeout=1)
        if left:
            log.error("kafka producer closed with undelivered records count=%d", left)
        return int(left)
