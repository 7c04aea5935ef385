"""Test support shared by the suites: builders, store writers, polling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from pymongo.database import Database

from shopstream.store.client import connect
from shopstream.store.customer_history import drop_store

__all__ = ["drop_history", "fresh_database", "wait_until"]


@contextmanager
def fresh_database(
    mongo_url: str, prefix: str, postgres_url: str | None = None
) -> Iterator[Database[dict[str, Any]]]:
    """A store of its own: a MongoDB database `<prefix>_<uuid>`, dropped afterwards, with
    (given PostgreSQL) the schema of the same name that holds its customers' histories."""
    client = connect(mongo_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()
        if postgres_url is not None:
            drop_history(postgres_url, name)


def drop_history(postgres_url: str, store: str) -> None:
    """Drops the PostgreSQL schema that holds a store's customer histories."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        drop_store(conn, store)


def wait_until(
    check: Callable[[], bool], what: str, timeout: float = 60, every: float = 0.2
) -> None:
    """Polls `check` until it is true; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
