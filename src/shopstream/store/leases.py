"""One writer of the demand history at a time: a lease document in MongoDB, kept alive by a
heartbeat.

A daily run reads and rewrites whole history documents, so two runs at once (a backfill from
the CLI while Airflow runs a day) could lose each other's days. The lease is a document with a
fixed `_id` (an insert is atomic on MongoDB and FerretDB alike) naming its holder and when it
expires. While the block runs, a heartbeat thread extends it every third of its time to live,
so a run of any length keeps it, and a holder that dies (`kill -9`, an Airflow task killed, a
lost machine) frees it within one time to live (30 s by default): the retry Airflow starts a
minute later finds it free, and a run started at once waits for it (decision 44).

A holder that loses its lease (its heartbeat could not reach the store before the lease
expired, and another run took it over) learns it at its next `renew()` (the detector calls it
between days) and stops with `LeaseLostError`; at most the write in flight overlaps the new
holder's, and both compute the same documents from the same rollups.

The lease lives in a collection of its own (`leases`): renewing and releasing filter on the
holder too, which FerretDB v1 answers by scanning the collection, so it must stay tiny.
Its times are the machines' clocks (they measure the runs, not the business day: docs/time.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from shopstream.domain.documents import LEASES

__all__ = ["DEFAULT_TTL_S", "Lease", "LeaseBusyError", "LeaseLostError", "lease"]

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 30.0
_LEASE_ID = "demand_history"  # what the lease guards


class LeaseBusyError(RuntimeError):
    """Another run holds the lease."""


class LeaseLostError(RuntimeError):
    """This run's lease expired and another run took it over: stop writing."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Lease:
    def __init__(self, db: Database[dict[str, Any]], ttl_s: float = DEFAULT_TTL_S) -> None:
        if ttl_s <= 0:
            raise ValueError(f"a lease's time to live must be positive, not {ttl_s}")
        self.coll = db[LEASES]
        self.ttl = timedelta(seconds=ttl_s)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.expires_at = _now()
        self.lost: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def _doc(self) -> dict[str, Any]:
        now = _now()
        self.expires_at = now + self.ttl
        return {
            "_id": _LEASE_ID,
            "holder": self.holder,
            "since": now,
            "expires_at": self.expires_at,
        }

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
        if _aware(current["expires_at"]) > _now():
            return current
        # expired (its holder died or lost the store): take it over, unless someone else did
        taken = self.coll.replace_one(
            {"_id": _LEASE_ID, "holder": current["holder"]}, self._doc()
        ).matched_count
        if taken:
            log.warning("took over the expired lease of %s", current["holder"])
            return None
        return self.coll.find_one({"_id": _LEASE_ID}) or current

    def _extend(self) -> bool:
        """Pushes the expiry one time to live ahead; False when the lease is not ours."""
        expires = _now() + self.ttl
        matched = self.coll.update_one(
            {"_id": _LEASE_ID, "holder": self.holder}, {"$set": {"expires_at": expires}}
        ).matched_count
        if matched:
            self.expires_at = expires
        return bool(matched)

    def renew(self) -> None:
        """Extends the lease now, or raises `LeaseLostError` if it is no longer this run's."""
        if self.lost is None and not self._extend():
            self.lost = "another run took it over"
        if self.lost is not None:
            raise LeaseLostError(
                f"the demand history's lease of {self.holder} was lost ({self.lost}); this "
                "run stops: rerun it (the history is rewritten whole, so a rerun is safe)"
            )

    def start_heartbeat(self) -> None:
        self._heartbeat = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        every = self.ttl.total_seconds() / 3
        while not self._stop.wait(every):
            try:
                if not self._extend():
                    self.lost = "another run took it over"
                    return
            except PyMongoError as exc:
                if _now() >= self.expires_at:
                    self.lost = f"it expired while the store did not answer: {exc}"
                    return
                log.warning(
                    "could not extend the lease (it expires at %s): %s", self.expires_at, exc
                )

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        self.coll.delete_one({"_id": _LEASE_ID, "holder": self.holder})


@contextmanager
def lease(
    db: Database[dict[str, Any]], wait_s: float | None = None, ttl_s: float = DEFAULT_TTL_S
) -> Iterator[Lease]:
    """Holds the demand history's lease for the block, a heartbeat extending it; waits up to
    `wait_s` for it (default: twice the time to live, so a dead holder's lease expires first)."""
    held = Lease(db, ttl_s)
    wait = 2 * ttl_s if wait_s is None else wait_s
    deadline = time.monotonic() + wait
    while (current := held.try_acquire()) is not None:
        if time.monotonic() > deadline:
            raise LeaseBusyError(
                f"another spike run ({current.get('holder')}, since {current.get('since')}) is "
                f"writing the demand history; retry when it ends (its lease expires at "
                f"{current.get('expires_at')} unless its holder keeps it alive)"
            )
        time.sleep(0.5)
    held.start_heartbeat()
    try:
        yield held
    finally:
        held.release()
