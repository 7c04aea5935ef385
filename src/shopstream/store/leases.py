"""One writer of the demand history at a time: a lease document in MongoDB.

A daily run reads and rewrites whole history documents, so two runs at once (a backfill from
the CLI while Airflow runs a day) could lose each other's days. The lease is a document with a
fixed `_id` (an insert is atomic on MongoDB and FerretDB alike); a crashed holder's lease
expires after `ttl_s`, and a long run renews it as it goes. It lives in a collection of its
own (`leases`): renewing and releasing filter on the holder too, which FerretDB v1 answers by
scanning the collection, so it must stay tiny.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shopstream.domain.documents import LEASES

__all__ = ["Lease", "LeaseBusyError", "lease"]

_LEASE_ID = "demand_history"  # what the lease guards


class LeaseBusyError(RuntimeError):
    """Another run holds the lease."""


class Lease:
    def __init__(self, db: Database[dict[str, Any]], ttl_s: float) -> None:
        self.coll = db[LEASES]
        self.ttl = timedelta(seconds=ttl_s)
        self.holder = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"

    def _doc(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {"_id": _LEASE_ID, "holder": self.holder, "since": now, "expires_at": now + self.ttl}

    def try_acquire(self) -> dict[str, Any] | None:
        """None when acquired, else the current holder's lease document."""
        try:
            self.coll.insert_one(self._doc())
            return None
        except DuplicateKeyError:
            pass
        current = self.coll.find_one({"_id": _LEASE_ID})
        if current is None:
            return self.try_acquire()
        expires = current["expires_at"]
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires > datetime.now(UTC):
            return current
        # expired: take it over, unless someone else did first
        taken = self.coll.replace_one(
            {"_id": _LEASE_ID, "holder": current["holder"]}, self._doc()
        ).matched_count
        return None if taken else (self.coll.find_one({"_id": _LEASE_ID}) or current)

    def renew(self) -> None:
        self.coll.update_one(
            {"_id": _LEASE_ID, "holder": self.holder},
            {"$set": {"expires_at": datetime.now(UTC) + self.ttl}},
        )

    def release(self) -> None:
        self.coll.delete_one({"_id": _LEASE_ID, "holder": self.holder})


@contextmanager
def lease(
    db: Database[dict[str, Any]], wait_s: float = 60.0, ttl_s: float = 900.0
) -> Iterator[Lease]:
    """Holds the demand history's lease for the block; waits up to `wait_s` for it."""
    held = Lease(db, ttl_s)
    deadline = time.monotonic() + wait_s
    while (current := held.try_acquire()) is not None:
        if time.monotonic() > deadline:
            raise LeaseBusyError(
                f"another spike run ({current.get('holder')}, since {current.get('since')}) is "
                f"writing the demand history; retry when it ends (its lease expires at "
                f"{current.get('expires_at')})"
            )
        time.sleep(0.5)
    try:
        yield held
    finally:
        held.release()
