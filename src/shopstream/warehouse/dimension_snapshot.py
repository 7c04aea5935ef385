"""The dimension tables, read from PostgreSQL as they are now (one consistent snapshot)."""

from __future__ import annotations

from datetime import datetime

import psycopg
import pyarrow as pa

__all__ = ["CUSTOMER_COLUMNS", "PRODUCT_COLUMNS", "read_dimensions"]

CUSTOMER_COLUMNS = ("id", "name", "email", "city", "country", "segment", "signup_at", "updated_at")
PRODUCT_COLUMNS = (
    "id", "name", "category", "brand", "price", "currency", "popularity", "created_at",
    "updated_at",
)  # fmt: skip
_TYPES = {
    "id": pa.int64(), "popularity": pa.int32(), "price": pa.decimal128(12, 2),
    "signup_at": pa.timestamp("us", tz="UTC"), "updated_at": pa.timestamp("us", tz="UTC"),
    "created_at": pa.timestamp("us", tz="UTC"),
}  # fmt: skip


def _table(
    cur: psycopg.Cursor[tuple[object, ...]], name: str, columns: tuple[str, ...]
) -> pa.Table:
    cur.execute(f"SELECT {', '.join(columns)} FROM {name} ORDER BY id")  # noqa: S608 (constants)
    rows = cur.fetchall()
    schema = pa.schema([(c, _TYPES.get(c, pa.string())) for c in columns])
    arrays = [
        pa.array([r[i] for r in rows], type=schema.field(i).type) for i in range(len(columns))
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def read_dimensions(postgres_url: str) -> tuple[pa.Table, pa.Table, datetime]:
    """(customers, products, the snapshot's time), read in one repeatable-read transaction."""
    with psycopg.connect(postgres_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT now()")
            row = cur.fetchone()
            assert row is not None
            at: datetime = row[0]
            customers = _table(cur, "customers", CUSTOMER_COLUMNS)
            products = _table(cur, "products", PRODUCT_COLUMNS)
    return customers, products, at
