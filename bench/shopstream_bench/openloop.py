"""An open-loop sender: orders at a fixed rate, paced by a clock, not by the responses.

Every `tick` seconds it posts the orders the schedule owes (`rate * elapsed`, minus those already
sent) as one `POST /orders`, on whichever keep-alive connection is free. A slow answer does not
slow the schedule (no coordinated omission): requests queue, and how late they left is recorded.
Each order is new (a fresh `order_id`, `created_at` = now), so the job inserts every one of them.
Times are wall-clock (`time.time()`), comparable with what the job writes to MongoDB.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from shopstream_bench.loadgen import http_request

__all__ = ["OrderFactory", "SendLog", "Sent", "send_at_rate"]

_CONTENT_LENGTH = b"\r\ncontent-length:"
_MAX_ERROR_SAMPLES = 5


class OrderFactory:
    """New orders from demand-model templates (customer and items), cycled."""

    def __init__(self, templates: Iterable[dict[str, Any]]) -> None:
        parts = [{"customer_id": t["customer_id"], "items": t["items"]} for t in templates]
        if not parts:
            raise ValueError("no order templates")
        self._templates: Iterator[dict[str, Any]] = itertools.cycle(parts)

    def take(self, count: int) -> list[dict[str, Any]]:
        now = datetime.now(UTC).isoformat()
        return [
            {**next(self._templates), "order_id": str(uuid.uuid4()), "created_at": now}
            for _ in range(count)
        ]


@dataclass
class Sent:
    """One request: when the schedule wanted it out, when it left, when it was answered."""

    scheduled: float
    order_ids: list[str]
    measured: bool  # False during the warm-up
    body: bytes = field(default=b"", repr=False)  # dropped once sent
    sent: float = 0.0
    acked: float = 0.0  # response complete (the 202 for accepted orders)
    status: int = 0


@dataclass
class SendLog:
    rate: float
    warmup: float
    duration: float
    started: float = 0.0  # wall clock at the start of the schedule
    requests: list[Sent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0

    @property
    def window(self) -> tuple[float, float]:
        """The measured window, wall clock."""
        begin = self.started + self.warmup
        return begin, begin + self.duration

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < _MAX_ERROR_SAMPLES:
            self.errors.append(message)


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    at = head.find(_CONTENT_LENGTH)
    if at < 0:
        raise ConnectionError("response without Content-Length")
    line_end = head.find(b"\r\n", at + 2)
    await reader.readexactly(int(head[at + len(_CONTENT_LENGTH) : line_end]))
    return int(head[9:12])


async def _worker(
    queue: asyncio.Queue[Sent | None],
    target: tuple[str, int, str],
    log: SendLog,
    on_ack: Callable[[Sent], None],
) -> None:
    host, port, key = target
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while (item := await queue.get()) is not None:
        body, item.body = item.body, b""
        try:
            if conn is None:
                conn = await asyncio.open_connection(host, port)
            reader, writer = conn
            item.sent = time.time()
            writer.write(http_request("/orders", body, host, port, key))
            item.status = await _read_response(reader)
            item.acked = time.time()
        except (OSError, asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            log.error(f"{type(exc).__name__}: {exc}")
            if conn is not None:
                conn[1].close()
            conn = None
            continue
        log.requests.append(item)
        if item.status == 202:
            on_ack(item)
        else:
            log.error(f"HTTP {item.status}")
    if conn is not None:
        conn[1].close()


async def send_at_rate(
    target: tuple[str, int, str],
    factory: OrderFactory,
    rate: float,
    warmup: float,
    duration: float,
    *,
    tick: float = 0.01,
    connections: int = 16,
    on_ack: Callable[[Sent], None] = lambda _: None,
    drain_timeout: float = 30.0,
) -> SendLog:
    """Posts `rate` orders/s to (host, port, api key) for warmup + duration seconds."""
    log = SendLog(rate, warmup, duration)
    queue: asyncio.Queue[Sent | None] = asyncio.Queue()
    workers = [asyncio.create_task(_worker(queue, target, log, on_ack)) for _ in range(connections)]
    loop = asyncio.get_running_loop()
    start, log.started = loop.time(), time.time()
    total, owed_before = warmup + duration, 0
    for i in itertools.count(1):
        elapsed = i * tick
        if elapsed > total + 1e-9:
            break
        delay = start + elapsed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        owed = round(rate * elapsed)
        if owed <= owed_before:
            continue
        orders = factory.take(owed - owed_before)
        owed_before = owed
        ids = [o["order_id"] for o in orders]
        body = orjson.dumps({"orders": orders})
        queue.put_nowait(Sent(log.started + elapsed, ids, elapsed > warmup, body))
    for _ in workers:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=drain_timeout)
    for task in pending:
        task.cancel()
        log.error(f"requests still unanswered {drain_timeout:.0f}s after the schedule ended")
    return log
