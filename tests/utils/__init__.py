"""Test support shared by the suites: builders, store writers, polling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from shopstream.config import Settings
from shopstream.store.customer_history import drop_store
from shopstream.store.ferretdb import open_store
from shopstream.store.protocols import Store

__all__ = ["drop_history", "fresh_store", "store_settings", "wait_until"]


def store_settings(settings: Settings, store: Store) -> Settings:
    """`settings` pointed at `store` (its database)."""
    return settings.model_copy(update={"mongo_database": store.name})


@contextmanager
def fresh_store(settings: Settings, prefix: str) -> Iterator[Store]:
    """A store of its own on the stack's servers: the database `<prefix>_<uuid>` and the
    PostgreSQL schema of the same name that holds its customers' histories, both dropped
    afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    store = open_store(settings.model_copy(update={"mongo_database": name}), "shopstream-test")
    try:
        yield store
    finally:
        store.drop()
        store.close()
        drop_history(settings.postgres_url, name)


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
