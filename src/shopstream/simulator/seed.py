"""`shopstream seed`: bulk-loads the simulated catalog and customers into PostgreSQL.

Rows go through COPY into a temporary table, then `INSERT ... ON CONFLICT DO NOTHING`, so
reruns add nothing twice and a bigger rerun adds only the missing rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from shopstream.db import migrate
from shopstream.simulator.catalog import customer_rows, product_rows

__all__ = ["SeedResult", "seed"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]  # (table, rows just written)

_CUSTOMER_COLS = ("id", "name", "email", "city", "country", "segment", "signup_at")
_PRODUCT_COLS = ("id", "name", "category", "brand", "price", "popularity")
_CHUNK = 50_000


@dataclass(frozen=True)
class SeedResult:
    customers_inserted: int
    products_inserted: int
    customers_total: int
    products_total: int


def _copy_in(
    conn: psycopg.Connection,
    table: str,
    cols: tuple[str, ...],
    rows: Iterable[tuple[object, ...]],
    progress: Progress,
) -> int:
    """COPYs rows in chunks; returns how many were new."""
    inserted = 0
    ident = sql.Identifier(table)
    columns = sql.SQL(", ").join(map(sql.Identifier, cols))
    staging = sql.Identifier(f"_seed_{table}")
    batch: list[tuple[object, ...]] = []

    def flush() -> int:
        with conn.transaction():
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging))
            conn.execute(
                sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
                    staging, columns, ident
                )
            )
            with conn.cursor().copy(
                sql.SQL("COPY {} ({}) FROM STDIN").format(staging, columns)
            ) as cp:
                for row in batch:
                    cp.write_row(row)
            cur = conn.execute(
                sql.SQL(
                    "INSERT INTO {t} ({c}) SELECT {c} FROM {s} ON CONFLICT (id) DO NOTHING"
                ).format(t=ident, c=columns, s=staging)
            )
            return cur.rowcount

    for row in rows:
        batch.append(row)
        if len(batch) >= _CHUNK:
            inserted += flush()
            progress(table, len(batch))
            batch.clear()
    if batch:
        inserted += flush()
        progress(table, len(batch))
    # Signups after seeding take ids from the identity sequence: move it past the seeded ids.
    conn.execute(
        sql.SQL(
            "SELECT setval(pg_get_serial_sequence({name}, 'id'), "
            "GREATEST((SELECT max(id) FROM {t}), 1))"
        ).format(name=sql.Literal(table), t=ident)
    )
    return inserted


def seed(
    dsn: str,
    customers: int,
    products: int,
    seed_value: int,
    progress: Progress = lambda table, n: None,
) -> SeedResult:
    """Ensures customers 1..`customers` and products 1..`products` exist (deterministically)."""
    migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        new_products = _copy_in(
            conn, "products", _PRODUCT_COLS, product_rows(seed_value, 0, products), progress
        )
        new_customers = _copy_in(
            conn, "customers", _CUSTOMER_COLS, customer_rows(seed_value, 0, customers), progress
        )
        totals = conn.execute(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM products)"
        ).fetchall()[0]
    log.info("seeded customers_new=%d products_new=%d", new_customers, new_products)
    return SeedResult(new_customers, new_products, totals[0], totals[1])
