"""The dimension tables (customers, products) from PostgreSQL, cached between micro-batches.

The first read loads the whole tables; after that only rows changed since the last read
(`updated_at`, indexed and maintained by triggers) are fetched and merged, so a large
customer table is never re-read on a timer. A batch that meets ids the cache does not know
(a customer who signed up a second ago) triggers an immediate incremental read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

__all__ = ["Dimensions", "jdbc_target"]

_COLUMNS = {
    "customers": "id, name, segment, city, country, updated_at",
    "products": "id, name, category, price, updated_at",
}
# Rows are stamped with now() at write time but become visible at commit; re-reading a
# minute back catches rows of transactions that committed after a later-stamped one.
_OVERLAP = "interval '60 seconds'"
_FULL_RELOAD_EVERY = 20


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


class _Table:
    """One cached dimension table and its high-water mark."""

    def __init__(self, read: Callable[[str], DataFrame], name: str) -> None:
        self._read = read
        self.name = name
        self.frame: DataFrame | None = None
        self.high_water: str | None = None  # newest updated_at seen, UTC text
        self.merges = 0

    def load(self) -> DataFrame:
        if self.merges >= _FULL_RELOAD_EVERY:
            # Each merge adds to the plan of the cached frame; start over now and then.
            self.high_water, self.merges = None, 0
        # Table and columns are our constants; the mark is a datetime read from the table.
        query = f"SELECT {_COLUMNS[self.name]} FROM {self.name}"  # noqa: S608
        if self.high_water is not None:
            query += f" WHERE updated_at > TIMESTAMPTZ '{self.high_water}+00' - {_OVERLAP}"
        delta = self._read(query)
        if self.frame is None or self.high_water is None:
            merged = delta
        else:
            keep = self.frame.join(delta.select("id"), "id", "left_anti")
            merged = keep.unionByName(delta)
            self.merges += 1
        fresh = merged.cache()
        # As text in UTC (the session timezone): Python datetimes would be in local time.
        newest = F.date_format(F.max("updated_at"), "yyyy-MM-dd HH:mm:ss.SSSSSS")
        latest = fresh.agg(newest).first()[0]  # type: ignore[index]  # also materialises
        if self.frame is not None:
            self.frame.unpersist()
        self.frame, self.high_water = fresh, latest or self.high_water
        return fresh


class Dimensions:
    """Customers and products as cached DataFrames, refreshed at most every `max_age_s`."""

    def __init__(self, spark: SparkSession, dsn: str, max_age_s: float = 30.0) -> None:
        url, props = jdbc_target(dsn)

        def read(query: str) -> DataFrame:
            return spark.read.jdbc(url, f"({query}) AS t", properties=props)

        self._tables = (_Table(read, "customers"), _Table(read, "products"))
        self._max_age_s = max_age_s
        self._loaded_at = float("-inf")

    def refresh(self) -> tuple[DataFrame, DataFrame]:
        """Reads what changed since the last read (everything, the first time)."""
        customers, products = (table.load() for table in self._tables)
        self._loaded_at = time.monotonic()
        return customers, products

    def current(self) -> tuple[DataFrame, DataFrame]:
        if time.monotonic() - self._loaded_at > self._max_age_s:
            return self.refresh()
        return self._tables[0].frame, self._tables[1].frame  # type: ignore[return-value]

    @property
    def age_s(self) -> float:
        return time.monotonic() - self._loaded_at
