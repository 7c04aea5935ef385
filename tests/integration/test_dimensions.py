"""Dimension caching: changes arrive incrementally, nothing is duplicated."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from pyspark.sql import SparkSession

from shopstream.config import Settings
from shopstream.streaming.dimensions import Dimensions, jdbc_target

pytestmark = pytest.mark.integration


def test_jdbc_target_from_a_dsn() -> None:
    url, props = jdbc_target("postgresql://app:p%40ss@db.internal:6543/shop")
    assert url == "jdbc:postgresql://db.internal:6543/shop"
    assert props == {"driver": "org.postgresql.Driver", "user": "app", "password": "p@ss"}


def test_changes_are_merged_incrementally(spark: SparkSession, stack: Settings) -> None:
    dims = Dimensions(spark, stack.postgres_url, max_age_s=3600)
    customers, products = dims.refresh()
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        n_customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]  # type: ignore[index]
        n_products = conn.execute("SELECT count(*) FROM products").fetchone()[0]  # type: ignore[index]
        (new_id,) = conn.execute(
            "INSERT INTO customers (name, email, city, country, segment, signup_at) VALUES "
            "('Katherine Johnson', 'kj@example.com', 'Hampton', 'US', 'consumer', now()) "
            "RETURNING id"
        ).fetchone()  # type: ignore[misc]
        conn.execute("UPDATE products SET price = 123.45 WHERE id = 8")
    assert customers.count() == n_customers
    assert dims.current()[0].count() == n_customers  # cached: not re-read within max_age

    customers, products = dims.refresh()
    assert customers.count() == n_customers + 1  # the new row once, nothing doubled
    assert products.count() == n_products
    assert customers.where(f"id = {new_id}").first()["name"] == "Katherine Johnson"  # type: ignore[index]
    assert products.where("id = 8").first()["price"] == Decimal("123.45")  # type: ignore[index]
