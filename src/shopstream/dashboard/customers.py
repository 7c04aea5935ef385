"""The Customer page: find customers in PostgreSQL, read their orders from MongoDB.

User input is only ever data: a bound SQL parameter with LIKE's wildcards escaped, and an
integer id; MongoDB is asked only for `_id`s built from the ids PostgreSQL returned.

A customer's history is the streaming job's `customer_orders` documents (one head listing
the months, one document per month), so lifetime totals and any page of orders are a few
point lookups however many orders the store holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from pymongo.database import Database

from shopstream.domain.documents import (
    CUSTOMER_ORDERS,
    ORDERS,
    customer_month_key,
    customer_orders_key,
)
from shopstream.streaming.mongo import find_each

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


def history(
    db: Database[dict[str, Any]],
    customer_id: int,
    page: int = 1,
    page_size: int = 10,
) -> History:
    """Lifetime totals and page `page` (from 1) of a customer's orders, newest first."""
    coll = db[CUSTOMER_ORDERS]
    head = coll.find_one({"_id": customer_orders_key(customer_id)}) or {}
    months = sorted(head.get("months", []), reverse=True)
    docs = find_each(coll, [customer_month_key(customer_id, m) for m in months])
    entries = [
        HistoryEntry(
            order_id, e["created_at"], int(e["total_cents"]), int(e["items"]), int(e["units"])
        )
        for doc in docs
        if doc
        for order_id, e in doc.get("orders", {}).items()
    ]
    entries.sort(key=lambda e: (e.created_at, e.order_id), reverse=True)
    pages = max(1, -(-len(entries) // page_size))
    page = min(max(1, page), pages)
    shown = entries[(page - 1) * page_size : page * page_size]
    orders = find_each(db[ORDERS], [e.order_id for e in shown])
    details = {
        e.order_id: doc for e, doc in zip(shown, orders, strict=True)
        if doc is not None
    }  # fmt: skip
    return History(
        customer_id=customer_id,
        orders=len(entries),
        spend_cents=sum(e.total_cents for e in entries),
        first_order_at=entries[-1].created_at if entries else None,
        last_order_at=entries[0].created_at if entries else None,
        page=page,
        pages=pages,
        entries=shown,
        details=details,
    )
