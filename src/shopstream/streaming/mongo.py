"""MongoDB writes shared by the sinks, within what FerretDB v1 does fast (docs/ferretdb.md)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

__all__ = ["DUPLICATE_KEY", "find_each", "insert_once"]

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


def find_each(
    coll: Collection[dict[str, Any]], ids: Sequence[str], threads: int = 8
) -> list[dict[str, Any] | None]:
    """The documents with these `_id`s (None where missing), in order, by point lookups from
    a few threads: indexed on MongoDB and on FerretDB, where `$in` would scan the collection."""
    if len(ids) <= 1:
        return [coll.find_one({"_id": i}) for i in ids]
    with ThreadPoolExecutor(max_workers=min(threads, len(ids))) as pool:
        return list(pool.map(lambda i: coll.find_one({"_id": i}), ids))
