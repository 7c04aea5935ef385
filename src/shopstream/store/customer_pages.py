"""The Customer page: find customers in PostgreSQL, read their orders' details from MongoDB.

User input is only ever data: a bound SQL parameter with LIKE's wildcards escaped, and an
integer id; MongoDB is asked only for `_id`s PostgreSQL returned.

A customer's history is the streaming job's `<store>.customer_orders` table in PostgreSQL
(`store.customer_history`), indexed by customer and time: lifetime totals and any page of
orders are two index range scans however many orders the store holds, and the page's orders
are then point lookups in MongoDB.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from shopstream.store.customer_history import read_history
from shopstream.store.errors import translated
from shopstream.store.protocols import Store

__all__ = [
    "MAX_QUERY",
    "CustomerMatch",
    "History",
    "HistoryEntry",
    "history",
    "like_prefix",
    "search",
]

MAX_QUERY = 200  # characters: longer input finds nothing (no name or email is that long)
_COLUMNS = "id, name, email, city, country, segment, signup_at"


@dataclass(frozen=True)
class CustomerMatch:
    id: int
    name: str
    email: str
    city: str
    country: str
    segment: str
    signup_at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    order_id: str
    created_at: datetime
    total_cents: int
    items: int
    units: int


@dataclass
class History:
    """A customer's lifetime totals and one page of orders, newest first (with their lines)."""

    customer_id: int
    orders: int
    spend_cents: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    page: int
    pages: int
    entries: list[HistoryEntry]
    details: dict[str, dict[str, Any]]  # order id -> the order document


def like_prefix(text: str) -> str:
    """A LIKE pattern matching strings that start with `text`, wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def search(conn: psycopg.Connection[Any], text: str, limit: int = 20) -> list[CustomerMatch]:
    """Customers whose id is `text`, or whose name or email starts with it (any case)."""
    text = text.strip()
    if not text or len(text) > MAX_QUERY:
        return []
    pattern = like_prefix(text.lower())
    by_id = int(text) if text.isdigit() and len(text) < 19 else None
    rows = conn.execute(
        f"""
        SELECT {_COLUMNS} FROM (
            SELECT {_COLUMNS}, 0 AS rank FROM customers WHERE id = %(id)s
            UNION
            (SELECT {_COLUMNS}, 1 FROM customers WHERE lower(name) LIKE %(p)s ESCAPE '\\'
             ORDER BY lower(name), id LIMIT %(n)s)
            UNION
            (SELECT {_COLUMNS}, 2 FROM customers WHERE lower(email) LIKE %(p)s ESCAPE '\\'
             ORDER BY lower(email), id LIMIT %(n)s)
        ) found
        ORDER BY rank, name, id LIMIT %(n)s
        """,  # noqa: S608 - only the fixed column list is formatted in
        {"id": by_id, "p": pattern, "n": limit},
        prepare=False,  # planned with the pattern's value, so the prefix indexes serve it
    ).fetchall()
    seen: dict[int, CustomerMatch] = {}
    for row in rows:
        seen.setdefault(row[0], CustomerMatch(*row))
    return list(seen.values())


@translated
def history(
    conn: psycopg.Connection[Any],
    store: Store,
    customer_id: int,
    page: int = 1,
    page_size: int = 10,
) -> History:
    """Lifetime totals and page `page` (from 1) of a customer's orders, newest first; the
    histories are `store`'s (its PostgreSQL schema has the store's name)."""
    page = max(1, page)
    totals, rows = read_history(conn, store.name, customer_id, page_size, (page - 1) * page_size)
    pages = max(1, -(-totals.orders // page_size))
    if page > pages:  # past the last page (the customer's orders were fewer): show the last
        page = pages
        totals, rows = read_history(
            conn, store.name, customer_id, page_size, (page - 1) * page_size
        )
    shown = [HistoryEntry(r.order_id, r.created_at, r.total_cents, r.items, r.units) for r in rows]
    orders = store.orders.orders([e.order_id for e in shown])
    details = {
        e.order_id: doc for e, doc in zip(shown, orders, strict=True)
        if doc is not None
    }  # fmt: skip
    return History(
        customer_id=customer_id,
        orders=totals.orders,
        spend_cents=totals.spend_cents,
        first_order_at=totals.first_order_at,
        last_order_at=totals.last_order_at,
        page=page,
        pages=pages,
        entries=shown,
        details=details,
    )
