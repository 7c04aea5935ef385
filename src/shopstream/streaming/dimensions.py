"""The dimension tables (customers, products) from PostgreSQL, cached between micro-batches."""

from __future__ import annotations

import time
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession

__all__ = ["Dimensions", "jdbc_target"]


def jdbc_target(dsn: str) -> tuple[str, dict[str, str]]:
    """A `postgresql://user:pw@host:port/db` DSN as a JDBC URL and connection properties."""
    parts = urlparse(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {parts.scheme}://...")
    url = f"jdbc:postgresql://{parts.hostname}:{parts.port or 5432}{parts.path or '/'}"
    props = {"driver": "org.postgresql.Driver"}
    if parts.username:
        props["user"] = unquote(parts.username)
    if parts.password:
        props["password"] = unquote(parts.password)
    return url, props


class Dimensions:
    """Customers and products as cached DataFrames, re-read at most every `max_age_s`.

    `refresh()` is also called when a batch meets ids the cache does not know (a customer
    who signed up seconds ago), so those are enriched instead of dead-lettered.
    """

    def __init__(self, spark: SparkSession, dsn: str, max_age_s: float = 30.0) -> None:
        self._spark = spark
        self._url, self._props = jdbc_target(dsn)
        self._max_age_s = max_age_s
        self._loaded_at = float("-inf")
        self._frames: tuple[DataFrame, DataFrame] | None = None

    def _read(self, query: str) -> DataFrame:
        return self._spark.read.jdbc(self._url, f"({query}) AS t", properties=self._props)

    def refresh(self) -> tuple[DataFrame, DataFrame]:
        customers = self._read("SELECT id, name, segment, city, country FROM customers").cache()
        products = self._read("SELECT id, name, category, price FROM products").cache()
        # Materialise now, not inside the next batch's join.
        customers.count()
        products.count()
        if self._frames is not None:
            for frame in self._frames:
                frame.unpersist()
        self._frames = (customers, products)
        self._loaded_at = time.monotonic()
        return self._frames

    def current(self) -> tuple[DataFrame, DataFrame]:
        if self._frames is None or time.monotonic() - self._loaded_at > self._max_age_s:
            return self.refresh()
        return self._frames

    @property
    def age_s(self) -> float:
        return time.monotonic() - self._loaded_at
