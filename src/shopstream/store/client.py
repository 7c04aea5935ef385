"""The one place a client of the document store is built.

Every client is timezone-aware (datetimes come back in UTC, as they were written) and names
itself to the server (`appname`, visible in MongoDB's logs and `currentOp`). A `timeout_s`
bounds how long a call waits for the server before `ServerSelectionTimeoutError`: the CLI and
the dashboard answer a person and set it; the streaming job keeps pymongo's default (30 s),
long enough to ride out a store restart.
"""

from __future__ import annotations

from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

__all__ = ["Client", "StoreDatabase", "connect"]

Client = MongoClient[dict[str, Any]]
# A store's database, handed to the store's functions by code outside this package that holds
# it without using it (the dashboard's cached resources); issue 19's Protocols will replace it.
StoreDatabase = Database[dict[str, Any]]


def connect(url: str, app: str = "shopstream", timeout_s: float | None = None) -> Client:
    """A client of the store at `url` (connects lazily, on its first call)."""
    options: dict[str, Any] = {"tz_aware": True, "appname": app}
    if timeout_s is not None:
        ms = max(1, round(timeout_s * 1000))
        options |= {"serverSelectionTimeoutMS": ms, "connectTimeoutMS": ms}
    return MongoClient(url, **options)
