"""The store's one error for "did not answer" (issue 19): what the views and the CLI catch."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from shopstream.domain.rollups import Delta
from shopstream.store.client import connect
from shopstream.store.errors import StoreUnavailableError, translated, translating
from shopstream.store.ferretdb import open_store_at
from shopstream.store.rollup_reader import RollupReader
from shopstream.store.spike_store import detected_days
from shopstream.store.stream_status import last_batches


def test_a_driver_error_becomes_store_unavailable_with_its_cause() -> None:
    @translated
    def read() -> None:
        raise AutoReconnect("connection reset")

    with pytest.raises(StoreUnavailableError) as caught:
        read()
    assert caught.value.cause == "AutoReconnect"
    assert isinstance(caught.value.__cause__, AutoReconnect)
    assert "connection reset" in str(caught.value)


def test_other_errors_pass_through_unchanged() -> None:
    @translated
    def read() -> int:
        raise KeyError("count")

    with pytest.raises(KeyError):
        read()
    assert translated(lambda: 7)() == 7


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_pages_reads_say_store_unavailable_when_nothing_listens() -> None:
    client = connect(f"mongodb://127.0.0.1:{closed_port()}", timeout_s=0.2)
    db = client["nothing_here"]
    try:
        reader = RollupReader(db, ZoneInfo("UTC"), closed_ttl_s=0)
        for read in (
            reader.all_time,
            lambda: reader.kpis("today", datetime(2026, 12, 7, 12, tzinfo=UTC)),
            lambda: detected_days(db),
            lambda: last_batches(db),
        ):
            with pytest.raises(StoreUnavailableError) as caught:
                read()
            assert caught.value.cause == ServerSelectionTimeoutError.__name__
    finally:
        client.close()


def test_a_block_translates_too_and_lets_other_errors_through() -> None:
    with pytest.raises(StoreUnavailableError) as caught, translating():
        raise ServerSelectionTimeoutError("no servers")
    assert caught.value.cause == "ServerSelectionTimeoutError"
    with pytest.raises(ValueError, match="a bug"), translating():
        raise ValueError("a bug, not an outage")


def test_every_part_of_a_store_says_store_unavailable_when_nothing_listens() -> None:
    store = open_store_at(f"mongodb://127.0.0.1:{closed_port()}", "nothing_here", timeout_s=0.2)
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    try:
        for call in (
            lambda: store.orders.orders(["a", "b"]),
            lambda: store.orders.insert_orders([{"_id": "a", "ingest": {}}], False),
            lambda: store.rollups.reader(ZoneInfo("UTC"), closed_ttl_s=0).trend("1h", now),
            lambda: store.rollups.writer().apply("q:0", {("total", "total"): Delta({})}),
            lambda: store.demand.read_history(now.date(), now.date()),
            lambda: store.spikes.emerging("2026-12-07"),
            lambda: store.status.query_progress("enrich"),
            lambda: store.status.finished_batches(),
            lambda: store.dead_letters.summary(),
        ):
            with pytest.raises(StoreUnavailableError) as caught:
                call()
            assert caught.value.transient  # a lost connection: worth a retry
        with pytest.raises(StoreUnavailableError), store.leases.hold(wait_s=0):
            pass
    finally:
        store.close()
