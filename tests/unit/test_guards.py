"""API keys and rate limits (pure)."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from shopstream.ingestion.guards import ApiKeys, RateLimiter, parse_json


def test_valid_keys_identify_callers_without_revealing_the_key() -> None:
    keys = ApiKeys(("alpha", "beta"))
    a, b = keys.identify("alpha"), keys.identify("beta")
    assert a != b
    assert "alpha" not in a


@pytest.mark.parametrize("presented", [None, "", "alph", "alpha ", "ALPHA", "beta"])
def test_invalid_keys_get_401(presented: str | None) -> None:
    with pytest.raises(HTTPException) as info:
        ApiKeys(("alpha",)).identify(presented)
    assert info.value.status_code == 401


def test_no_keys_configured_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="API key"):
        ApiKeys(())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_counts_orders_per_caller_and_refills_over_time() -> None:
    clock = Clock()
    limiter = RateLimiter("10/minute", clock=clock)
    limiter.take("a", cost=6)
    limiter.take("a", cost=4)
    with pytest.raises(HTTPException) as info:
        limiter.take("a", cost=3)
    assert info.value.status_code == 429
    assert info.value.headers == {"Retry-After": "18"}  # 3 orders at 1 per 6 s
    limiter.take("b", cost=10)  # another key has its own budget
    clock.now += 12
    limiter.take("a", cost=2)  # two orders refilled
    with pytest.raises(HTTPException):
        limiter.take("a", cost=1)
    clock.now += 3600
    limiter.take("a", cost=10)  # the bucket holds at most one window
    with pytest.raises(HTTPException):
        limiter.take("a", cost=1)


def test_a_batch_larger_than_the_limit_is_refused_with_advice() -> None:
    with pytest.raises(HTTPException) as info:
        RateLimiter("10/second").take("a", cost=11)
    assert "send fewer" in info.value.detail


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"{'a': 1}", b"NaN"])
def test_non_json_bodies_are_422_with_location(body: bytes) -> None:
    with pytest.raises(HTTPException) as info:
        parse_json(body)
    assert info.value.status_code == 422
    assert info.value.detail[0]["loc"] == ["body"]
