"""Writes and point reads FerretDB v1 does fast (docs/ferretdb.md), for every writer and reader."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial
from typing import Any, TypeVar

from pymongo import ReplaceOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

__all__ = ["DUPLICATE_KEY", "all_of", "find_each", "insert_once", "insert_owned", "replace_all"]

T = TypeVar("T")
CONCURRENT_COMMANDS = 2  # what `replace_all` splits a large write into

DUPLICATE_KEY = 11000


def insert_once(
    coll: Collection[dict[str, Any]], docs: list[dict[str, Any]], bulk_size: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Inserts the documents whose `_id` is new; returns (inserted, already there).

    Unordered `insert_many`: one command per `bulk_size` documents, and a duplicate key
    (error 11000, reported per document on MongoDB and FerretDB alike) means "already there";
    the others in the command are still inserted. Any other write error raises.
    """
    inserted: list[dict[str, Any]] = []
    existing: list[dict[str, Any]] = []
    for start in range(0, len(docs), bulk_size):
        chunk = docs[start : start + bulk_size]
        try:
            coll.insert_many(chunk, ordered=False)
            inserted += chunk
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            taken = {e["index"] for e in errors}
            inserted += [d for i, d in enumerate(chunk) if i not in taken]
            existing += [d for i, d in enumerate(chunk) if i in taken]
    return inserted, existing


def insert_owned(
    coll: Collection[dict[str, Any]],
    docs: list[dict[str, Any]],
    bulk_size: int,
    recheck: bool,
    mine: Callable[[dict[str, Any], dict[str, Any]], bool],
) -> list[dict[str, Any]]:
    """Insert-first ownership: inserts the documents whose `_id` is new and returns the ones
    this writer owns. Those it inserted; and, when `recheck` (an earlier attempt of the same
    writer may have inserted some: a replayed batch, a retried task), the documents already
    there that `mine(stored, doc)` says that attempt wrote, as stored. Without `recheck` a
    duplicate is someone else's and costs no read."""
    inserted, existing = insert_once(coll, docs, bulk_size)
    if recheck and existing:
        stored = find_each(coll, [d["_id"] for d in existing])
        inserted += [was for doc, was in zip(existing, stored, strict=True)
                     if was is not None and mine(was, doc)]  # fmt: skip
    return inserted


def find_each(
    coll: Collection[dict[str, Any]], ids: Sequence[str], threads: int = 8
) -> list[dict[str, Any] | None]:
    """The documents with these `_id`s (None where missing), in order, by point lookups from
    a few threads: indexed on MongoDB and on FerretDB, where `$in` would scan the collection."""
    if len(ids) <= 1:
        return [coll.find_one({"_id": i}) for i in ids]
    with ThreadPoolExecutor(max_workers=min(threads, len(ids))) as pool:
        return list(pool.map(lambda i: coll.find_one({"_id": i}), ids))


def all_of(pool: ThreadPoolExecutor, calls: Sequence[Callable[[], T]]) -> list[T]:
    """Runs `calls` side by side and returns their results in order: the first on the calling
    thread, the others on `pool`. The first error is raised only once every call has ended,
    so a caller that retries never races its own earlier writes. A call that uses `all_of` on
    the same pool again goes first: it then runs on the caller's thread, and no pool thread
    ever waits for the pool (which could deadlock a full pool)."""
    futures = [pool.submit(call) for call in calls[1:]]
    try:
        first = [calls[0]()] if calls else []
    finally:
        wait(futures)
    return first + [f.result() for f in futures]


def replace_all(
    db: Database[dict[str, Any]],
    writes: Mapping[str, list[ReplaceOne[dict[str, Any]]]],
    bulk_size: int,
    pool: ThreadPoolExecutor | None = None,
) -> None:
    """Every collection's `ReplaceOne`s, unordered, as a few concurrent commands.

    FerretDB v1 runs each statement of a bulk write on its own (~0.7 ms each on a quiet
    machine); two or three commands in flight overlap their round trips and the encoding on
    both sides (64 replaces: 45 ms in one command, 26 ms in two, 45 ms in four; issue 18). Each
    document is in one command, so the commands may run in any order.
    """
    total = sum(len(ops) for ops in writes.values())
    size = max(8, min(bulk_size, -(-total // (CONCURRENT_COMMANDS if pool else 1))))
    commands = [
        (collection, ops[start : start + size])
        for collection, ops in writes.items()
        for start in range(0, len(ops), size)
    ]
    if pool is None or len(commands) <= 1:
        for collection, ops in commands:
            db[collection].bulk_write(ops, ordered=False)
        return
    all_of(pool, [partial(db[c].bulk_write, o, ordered=False) for c, o in commands])
