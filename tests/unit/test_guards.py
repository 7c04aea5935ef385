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


def test_rate_limit_counts_orders_per_caller() -> None:
    limiter = RateLimiter("10/minute")
    limiter.take("a", cost=6)
    limiter.take("a", cost=4)
    with pytest.raises(HTTPException) as info:
        limiter.take("a", cost=1)
    assert info.value.status_code == 429
    assert int(info.value.headers["Retry-After"]) >= 1  # type: ignore[index]
    limiter.take("b", cost=10)  # another key has its own budget


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"{'a': 1}", b"NaN"])
def test_non_json_bodies_are_422_with_location(body: bytes) -> None:
    with pytest.raises(HTTPException) as info:
        parse_json(body)
    assert info.value.status_code == 422
    assert info.value.detail[0]["loc"] == ["body"]
