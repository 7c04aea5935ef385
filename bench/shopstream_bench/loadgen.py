"""A closed-loop HTTP/1.1 load generator: N keep-alive connections, one request in flight each.

Plain asyncio protocols on uvloop that parse only the status line and `Content-Length`:
one core drives several times the requests/s that a one-core Python server answers
(calibrated against wrk in docs/benchmarks.md), so the server, not the client, is measured.
Only responses completed inside the measurement window count, after a warm-up.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from functools import partial
from time import perf_counter
from typing import cast

from shopstream_bench.cpu import CpuMeter
from shopstream_bench.results import Run

__all__ = ["http_request", "run_load"]

_CONTENT_LENGTH = b"\r\ncontent-length:"


def http_request(path: str, body: bytes, host: str, port: int, api_key: str | None) -> bytes:
    """A complete `POST` request, ready to write to a socket."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if api_key is not None:
        lines.append(f"X-API-Key: {api_key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Shared:
    """State every connection of one run shares (single-threaded: the event loop's)."""

    def __init__(
        self, requests: Iterator[bytes], start: float, end: float, max_requests: int, run: Run
    ) -> None:
        self.requests = requests
        self.start = start
        self.end = end
        self.budget = max_requests
        self.run = run

    def record(self, sent_at: float, done_at: float, status: int) -> None:
        if self.start <= done_at <= self.end:
            self.run.latencies.append(done_at - sent_at)
            self.run.outcomes[str(status)] += 1


class _Connection(asyncio.Protocol):
    def __init__(self, shared: _Shared, done: asyncio.Future[None]) -> None:
        self._shared = shared
        self._done = done
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._need = -1  # bytes of the current response, once its head is parsed
        self._status = 0
        self._sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send_next()

    def _send_next(self) -> None:
        assert self._transport is not None
        shared = self._shared
        if perf_counter() >= shared.end or shared.budget <= 0:
            self._transport.close()
            return
        shared.budget -= 1
        self._sent_at = perf_counter()
        self._transport.write(next(shared.requests))

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if self._need < 0:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(buf[:head_end]).lower()
            at = head.find(_CONTENT_LENGTH)
            if at < 0:
                self._fail("response without Content-Length")
                return
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + len(_CONTENT_LENGTH) : line_end if line_end > 0 else None])
            self._status = int(head[9:12])
            self._need = head_end + 4 + length
        if len(buf) < self._need:
            return
        if len(buf) > self._need:
            self._fail("bytes after the response (the client never pipelines)")
            return
        self._shared.record(self._sent_at, perf_counter(), self._status)
        buf.clear()
        self._need = -1
        self._send_next()

    def _fail(self, message: str) -> None:
        self._shared.run.error(message)
        self._need = -1  # counted once, here, not again when the connection drops
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._need >= 0 or exc is not None:
            self._shared.run.error(f"connection lost mid-response: {exc}")
        if not self._done.done():
            self._done.set_result(None)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


async def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    meter: CpuMeter | None = None,
    max_requests: int = 100_000_000,
    drain_timeout: float = 30.0,
) -> Run:
    """Keeps `concurrency` requests in flight for warmup + duration seconds, cycling `requests`."""
    if not requests:
        raise ValueError("no requests to send")
    loop = asyncio.get_running_loop()
    run = Run(duration)
    begin = perf_counter()
    shared = _Shared(
        itertools.cycle(requests), begin + warmup, begin + warmup + duration, max_requests, run
    )
    conns: list[_Connection] = []
    waits: list[asyncio.Future[None]] = []
    for _ in range(concurrency):
        done: asyncio.Future[None] = loop.create_future()
        connect = loop.create_connection(partial(_Connection, shared, done), host, port)
        _, conn = await asyncio.wait_for(connect, timeout=5)
        conns.append(conn)
        waits.append(done)
    if meter is not None:
        loop.call_at(loop.time() + shared.start - perf_counter(), meter.start)
        loop.call_at(loop.time() + shared.end - perf_counter(), meter.stop)
    _, pending = await asyncio.wait(waits, timeout=shared.end - perf_counter() + drain_timeout)
    for conn, wait in zip(conns, waits, strict=True):
        if wait in pending:
            run.error(f"no response within {drain_timeout:.0f}s after the window")
            conn.abort()
    if meter is not None:
        run.cpu_seconds = meter.stop()
    return run
