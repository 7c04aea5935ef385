"""Customers and products from PostgreSQL, cached per process for the enrichment.

Each process that enriches (a Spark executor's Python worker) keeps a bounded cache per table:
- an id it has not seen is read at once (`WHERE id = ANY(...)`, by primary key), so a customer
  who signed up a second ago is enriched in the very batch that meets them;
- every `max_age_s` the rows changed since the last look (`updated_at`, indexed and maintained
  by triggers) are re-read, and the cached ones among them replaced;
- at most `max_entries` rows per table, least recently used out first.

So the cost of a batch depends on the ids it carries, never on uptime or table size, and
memory is capped. Deleted rows are not expected (customers and products are never deleted).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

import psycopg

from shopstream.streaming.transform import Customer, Product

__all__ = ["Dimensions"]

Row = TypeVar("Row", Customer, Product)

# Rows are stamped with now() at write time but become visible at commit; looking a minute
# back catches rows of transactions that committed after a later-stamped one.
_OVERLAP = "interval '60 seconds'"


class _Table(Generic[Row]):
    """One table's cache and its `updated_at` high-water mark."""

    def __init__(self, name: str, columns: str, make: Callable[..., Row], max_entries: int):
        self.name, self.columns = name, columns
        self.make: Callable[..., Row] = make
        self.max_entries = max_entries
        self.rows: OrderedDict[int, Row] = OrderedDict()
        self.high_water: datetime | None = None

    def get(self, conn: psycopg.Connection[Any], ids: Iterable[int]) -> dict[int, Row]:
        found: dict[int, Row] = {}
        missing = []
        for i in ids:
            row = self.rows.get(i)
            if row is None:
                missing.append(i)
            else:
                found[i] = row
                self.rows.move_to_end(i)
        if missing:
            # Table and columns are constants of this module; the ids are a parameter.
            query = f"SELECT {self.columns} FROM {self.name} WHERE id = ANY(%s)"  # noqa: S608
            for values in conn.execute(query, (missing,)):
                row = self._keep(values)
                found[row.id] = row
        return found

    def refresh(self, conn: psycopg.Connection[Any]) -> int:
        """Replaces the cached rows changed since the last look; returns how many."""
        if self.high_water is None:
            query = f"SELECT max(updated_at) FROM {self.name}"  # noqa: S608
            self.high_water = conn.execute(query).fetchone()[0]  # type: ignore[index]
            return 0
        query = (
            f"SELECT {self.columns}, updated_at FROM {self.name} "  # noqa: S608
            f"WHERE updated_at > %s - {_OVERLAP}"
        )
        changed = 0
        for *values, updated_at in conn.execute(query, (self.high_water,)):
            self.high_water = max(self.high_water, updated_at)
            if values[0] in self.rows:
                self.rows[values[0]] = self.make(*values)
                changed += 1
        return changed

    def _keep(self, values: tuple[Any, ...]) -> Row:
        row = self.make(*values)
        self.rows[row.id] = row
        while len(self.rows) > self.max_entries:
            self.rows.popitem(last=False)
        return row


Connect = Callable[[], "psycopg.Connection[Any]"]


class Dimensions:
    """The `Lookup` of `streaming.transform`, backed by PostgreSQL."""

    def __init__(
        self,
        connect: Connect,
        max_age_s: float = 30.0,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connect = connect
        self.max_age_s = max_age_s
        self.clock = clock
        self._conn: psycopg.Connection[Any] | None = None
        self._checked_at = float("-inf")
        self.tables = (
            _Table("customers", "id, name, segment, city, country", Customer, max_entries),
            _Table("products", "id, name, category, price", Product, max_entries),
        )

    @classmethod
    def from_url(cls, postgres_url: str, max_age_s: float, max_entries: int) -> Dimensions:
        def connect() -> psycopg.Connection[Any]:
            return psycopg.connect(postgres_url, autocommit=True, connect_timeout=10)

        return cls(connect, max_age_s, max_entries)

    def customers(self, ids: set[int]) -> Mapping[int, Customer]:
        return self._get(0, ids)  # type: ignore[return-value]

    def products(self, ids: set[int]) -> Mapping[int, Product]:
        return self._get(1, ids)  # type: ignore[return-value]

    def _get(self, table: int, ids: set[int]) -> Mapping[int, Customer | Product]:
        if not ids:
            return {}
        try:
            return self._read(table, ids)
        except psycopg.OperationalError:  # a dropped connection: one fresh attempt
            self.close()
            return self._read(table, ids)

    def _read(self, table: int, ids: set[int]) -> Mapping[int, Customer | Product]:
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        if self.clock() - self._checked_at > self.max_age_s:
            for t in self.tables:
                t.refresh(self._conn)
            self._checked_at = self.clock()
        return self.tables[table].get(self._conn, ids)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __len__(self) -> int:
        return sum(len(t.rows) for t in self.tables)
