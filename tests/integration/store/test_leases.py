"""The demand history's lease on the real store: one holder at a time, kept alive by its
heartbeat past its time to live, freed at once on release, taken over once a dead holder's
expires, and a holder that lost it stops at its next `renew()`."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shopstream.config import Settings
from shopstream.store.client import StoreDatabase, connect
from shopstream.store.leases import Lease, LeaseBusyError, LeaseLostError, lease
from tests.utils import fresh_store

pytestmark = pytest.mark.integration

TTL_S = 1.5


@pytest.fixture
def db(stack: Settings) -> Iterator[StoreDatabase]:
    with fresh_store(stack, "leases") as opened:
        client = connect(stack.mongo_url, app="shopstream-test")
        try:
            yield client[opened.name]
        finally:
            client.close()


def test_the_heartbeat_keeps_the_lease_past_its_time_to_live(db: StoreDatabase) -> None:
    with lease(db, ttl_s=TTL_S) as held:
        time.sleep(3 * TTL_S)  # no renew() from the block: only the heartbeat
        other = Lease(db, TTL_S)
        current = other.try_acquire()
        assert current is not None
        assert current["holder"] == held.holder
        with pytest.raises(LeaseBusyError, match=held.holder), lease(db, wait_s=0.5, ttl_s=TTL_S):
            pass
        held.renew()  # still ours
    with lease(db, wait_s=0, ttl_s=TTL_S):  # released: free at once
        pass


def test_a_dead_holders_lease_is_taken_over_once_it_expires(db: StoreDatabase) -> None:
    dead = Lease(db, TTL_S)
    assert dead.try_acquire() is None  # acquired, and never renewed or released: it died
    started = time.monotonic()
    with lease(db, ttl_s=TTL_S) as held:  # waits up to twice the time to live
        waited = time.monotonic() - started
        assert held.holder != dead.holder
    assert 0 < waited <= 2 * TTL_S


def test_a_holder_that_lost_its_lease_stops_at_its_next_renew(db: StoreDatabase) -> None:
    with lease(db, ttl_s=TTL_S) as held:
        # another run took it over (as after an expiry while this one could not reach the store)
        db["leases"].update_one({"_id": "demand_history"}, {"$set": {"holder": "elsewhere:1:x"}})
        with pytest.raises(LeaseLostError, match="another run took it over"):
            held.renew()
    # leaving the block did not delete the other holder's lease
    assert db["leases"].find_one({"_id": "demand_history"})["holder"] == "elsewhere:1:x"
