"""Edge guards: API keys, per-key rate limits and body-size limits."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable

import orjson
from fastapi import HTTPException, Request, status
from limits import parse

__all__ = ["ApiKeys", "RateLimiter", "parse_json", "read_body"]


class ApiKeys:
    """Valid keys, compared in constant time; callers are identified by a digest, not the key."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        if not keys:
            raise ValueError("at least one API key is required (SHOPSTREAM_API_KEYS)")
        self._keys = [k.encode() for k in keys]

    def identify(self, presented: str | None) -> str:
        """The caller's id for a valid key; raises 401 otherwise."""
        candidate = (presented or "").encode()
        matched = False
        for key in self._keys:  # no early exit: every key is compared
            matched |= hmac.compare_digest(candidate, key)
        if not presented or not matched:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or invalid API key: send it in the X-API-Key header",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        return hashlib.sha256(candidate).hexdigest()[:16]


class RateLimiter:
    """Orders per API key (e.g. "20000/second"), as a token bucket per key.

    The rate string is parsed by `limits`; the bucket itself is a few arithmetic operations,
    because `limits`' in-memory storage runs expiry timer threads that cost ~10% of
    `POST /order` throughput (docs/benchmarks.md). The bucket holds one window's worth of
    orders, so bursts up to the stated amount pass and the long-run rate is the limit.
    """

    def __init__(self, rate: str, clock: Callable[[], float] = time.monotonic) -> None:
        item = parse(rate)
        self.rate = rate
        self.capacity = float(item.amount)
        self.per_second = item.amount / item.get_expiry()
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)

    def take(self, caller: str, cost: int = 1) -> None:
        """Spends `cost` orders of `caller`'s budget; raises 429 with Retry-After if short."""
        if cost > self.capacity:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                detail=f"{cost} orders exceed the per-key limit of {self.rate}; send fewer at once",
                headers={"Retry-After": "1"},
            )
        now = self._clock()
        tokens, at = self._buckets.get(caller, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.per_second)
        if tokens >= cost:
            self._buckets[caller] = (tokens - cost, now)
            return
        self._buckets[caller] = (tokens, now)
        retry = max(1, math.ceil((cost - tokens) / self.per_second))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"rate limit of {self.rate} orders per API key exceeded; retry in {retry}s",
            headers={"Retry-After": str(retry)},
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than `limit` bytes without reading them all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail=f"request body larger than {limit} bytes; split it into smaller requests",
    )


def parse_json(body: bytes) -> object:
    """The decoded JSON body; 422 with a located error when it is not JSON."""
    if not body:
        raise _unprocessable("request body is empty; send a JSON object", "missing")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _unprocessable(f"body is not valid JSON: {exc}", "json_invalid") from None


def _unprocessable(msg: str, kind: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["body"], "msg": msg, "type": kind}],
    )
