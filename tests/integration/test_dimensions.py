"""The dimension cache against the real PostgreSQL: new rows at once, changes by refresh."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from shopstream.config import Settings
from shopstream.streaming.dimensions import Dimensions

pytestmark = pytest.mark.integration


def test_new_rows_are_read_at_once_and_changes_at_the_next_refresh(stack: Settings) -> None:
    now = [0.0]
    dims = Dimensions.from_url(stack.postgres_url, max_age_s=30, max_entries=1000)
    dims.clock = lambda: now[0]
    assert dims.products({8})[8].price > 0
    before = dims.products({8})[8].price
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        (new_id,) = conn.execute(
            "INSERT INTO customers (name, email, city, country, segment, signup_at) VALUES "
            "('Katherine Johnson', 'kj@example.com', 'Hampton', 'US', 'consumer', now()) "
            "RETURNING id"
        ).fetchone()  # type: ignore[misc]
        conn.execute("UPDATE products SET price = price + 1 WHERE id = 8")
    try:
        assert dims.customers({new_id})[new_id].name == "Katherine Johnson"  # unknown id: read
        assert dims.products({8})[8].price == before  # cached until the refresh is due
        now[0] = 31
        assert dims.products({8})[8].price == before + Decimal(1)
        assert dims.customers({10**12}) == {}
    finally:
        with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
            conn.execute("UPDATE products SET price = price - 1 WHERE id = 8")
        dims.close()
