"""Sends simulated orders through the ingestion API, as any client would.

429 and 503 answers are retried after their `Retry-After`; connection errors with backoff.
Orders keep their `order_id` across retries, so a retry can never create a second order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

__all__ = ["OrderSender", "SendStats"]

log = logging.getLogger(__name__)

_RETRY_STATUSES = {429, 503}


@dataclass
class SendStats:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)
    rejections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed if self.elapsed > 0 else 0.0


class OrderSender:
    def __init__(
        self, base_url: str, api_key: str, concurrency: int = 8, max_retries: int = 20
    ) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"X-API-Key": api_key, "Content-Type": "application/json"},
            timeout=httpx.Timeout(30.0),
            limits=limits,
        )
        self._gate = asyncio.Semaphore(concurrency)
        self._max_retries = max_retries
        self.stats = SendStats()

    async def __aenter__(self) -> OrderSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: object) -> httpx.Response:
        payload = orjson.dumps(body)
        for attempt in range(self._max_retries + 1):
            try:
                resp = await self._client.post(path, content=payload)
            except httpx.TransportError as exc:
                wait = min(5.0, 0.2 * 2**attempt)
                log.warning("API unreachable, retrying in %.1fs error=%s", wait, exc)
            else:
                if resp.status_code not in _RETRY_STATUSES:
                    return resp
                wait = float(resp.headers.get("Retry-After", "1"))
            if attempt == self._max_retries:
                break
            self.stats.retries += 1
            await asyncio.sleep(wait)
        raise RuntimeError(f"gave up on {path} after {self._max_retries} retries")

    async def send_one(self, order: dict[str, Any]) -> bool:
        async with self._gate:
            resp = await self._post("/order", order)
        self.stats.sent += 1
        if resp.status_code == 202:
            self.stats.accepted += 1
            return True
        self._reject(
            {
                "order_id": order.get("order_id"),
                "status": resp.status_code,
                "detail": resp.json().get("detail"),
            }
        )
        return False

    async def send_batch(self, orders: list[dict[str, Any]]) -> int:
        """Sends a batch; orders Kafka did not take are resent. Returns how many were accepted."""
        pending = orders
        accepted = 0
        for _ in range(self._max_retries + 1):
            async with self._gate:
                resp = await self._post("/orders", {"orders": pending})
            if resp.status_code not in (202, 207, 422):
                raise RuntimeError(f"POST /orders answered {resp.status_code}: {resp.text[:300]}")
            retry = []
            for order, result in zip(pending, resp.json()["results"], strict=True):
                if result["status"] == "accepted":
                    accepted += 1
                elif result["status"] == "unavailable":
                    retry.append(order)
                else:
                    self._reject({"order_id": order.get("order_id"), **result})
            if not retry:
                break
            self.stats.retries += 1
            pending = retry
            await asyncio.sleep(1)
        else:
            for order in pending:
                self._reject({"order_id": order.get("order_id"), "status": "unavailable"})
        self.stats.sent += len(orders)
        self.stats.accepted += accepted
        return accepted

    def _reject(self, detail: dict[str, Any]) -> None:
        self.stats.rejected += 1
        if len(self.stats.rejections) < 20:
            self.stats.rejections.append(detail)
