"""The partition writer against the real MongoDB role and PostgreSQL: exactly once by record.

Drives `write_partition` directly (no Spark) through the situations Spark can create: a batch
replayed after a crash, a retried task, resends in later batches and in other partitions of
the same batch.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from shopstream.config import Settings
from shopstream.domain.rollups import recompute
from shopstream.store.customer_history import read_history
from shopstream.store.protocols import Store
from shopstream.streaming.sink import PartitionResult, SinkConfig, sink_config, write_partition
from shopstream.streaming.transform import KafkaRecord
from tests.utils import fresh_store, store_settings

pytestmark = pytest.mark.integration

TS = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def setup(stack: Settings) -> Iterator[tuple[SinkConfig, Store]]:
    with fresh_store(stack, "it_sink") as store:
        yield sink_config(store_settings(stack, store)), store


def stored_orders(store: Store) -> list[dict[str, Any]]:
    found = store.orders.orders(sorted(store.orders.inserting_batches()))
    return [o for o in found if o is not None]


def value(order_id: str, customer: int, product: int, quantity: int = 1) -> bytes:
    return json.dumps(
        {
            "schema_version": 1,
            "order_id": order_id,
            "customer_id": customer,
            "created_at": "2026-11-28T11:30:00Z",
            "received_at": "2026-11-28T11:30:00Z",
            "items": [{"product_id": product, "quantity": quantity}],
        }
    ).encode()


def partition(p: int, values: list[bytes], first_offset: int = 0) -> list[KafkaRecord]:
    return [KafkaRecord(b"k", v, "orders", p, first_offset + i, TS) for i, v in enumerate(values)]


def customers_of_day(result: PartitionResult) -> int:
    delta = result.deltas.get(("day", "2026-11-28"))
    return int(delta.counts["customers"]) if delta else 0


def test_a_replayed_batch_counts_exactly_what_its_crashed_attempt_wrote(
    setup: tuple[SinkConfig, Store],
) -> None:
    config, db = setup
    ids = [str(uuid.uuid4()) for _ in range(6)]
    # Customers 1 and 2 order twice each: 4 distinct customers for 6 orders.
    recs = partition(
        0, [value(i, c, p) for i, c, p in zip(ids, [1, 1, 2, 2, 3, 4], range(1, 7), strict=True)]
    )
    first = write_partition(recs, config, "q1", 5, recheck=False)
    assert (first.new, first.orders, customers_of_day(first)) == (6, 6, 4)

    # The job crashed before Spark committed batch 5: Spark replays it with the same records.
    replay = write_partition(recs, config, "q1", 5, recheck=True)
    assert (replay.new, customers_of_day(replay)) == (6, 4)
    assert {k: dict(d.counts) for k, d in replay.deltas.items()} == {
        k: dict(d.counts) for k, d in first.deltas.items()
    }

    # The same records in a later batch (a resend, a re-read) are someone else's: nothing new.
    later = write_partition(recs, config, "q1", 6, recheck=True)
    assert (later.new, later.deltas) == (0, {})
    assert len(stored_orders(db)) == 6


def test_a_resend_in_another_partition_of_the_same_batch_counts_once(
    setup: tuple[SinkConfig, Store],
) -> None:
    config, db = setup
    order_id = str(uuid.uuid4())
    # The same order id sent with another customer (so keyed to another partition).
    a = partition(0, [value(order_id, 5, 1)], first_offset=10)
    b = partition(1, [value(order_id, 6, 2)], first_offset=20)
    results = [
        write_partition(a, config, "q2", 0, False),
        write_partition(b, config, "q2", 0, False),
    ]
    assert sum(r.new for r in results) == 1
    # A replay of that batch, in either order, still counts it once: by its own record.
    replayed = [
        write_partition(b, config, "q2", 0, True),
        write_partition(a, config, "q2", 0, True),
    ]
    assert sum(r.new for r in replayed) == 1
    [stored] = db.orders.orders([order_id])
    assert stored is not None
    assert (stored["customer"]["id"], stored["ingest"]["partition"]) == (5, 0)  # first write won


def test_orders_markers_and_dead_letters_are_written_and_published(
    setup: tuple[SinkConfig, Store], stack: Settings
) -> None:
    config, db = setup
    with psycopg.connect(stack.postgres_url) as conn:
        (price,) = conn.execute("SELECT price FROM products WHERE id = 3").fetchone()  # type: ignore[misc]
    good, unknown = str(uuid.uuid4()), str(uuid.uuid4())
    recs = partition(2, [value(good, 7, 3, quantity=4), value(unknown, 10**9, 3), b"{bad"])
    result = write_partition(recs, config, "q3", 0, False)
    assert (result.records, result.orders, result.new, result.dead) == (3, 1, 1, 2)
    [doc] = db.orders.orders([good])
    assert doc is not None
    assert doc["order_total"] == float(price * 4)
    dead = db.dead_letters.newest(include_replayed=True)
    assert {d.reason for d in dead} == {"unknown_customer", "malformed_json"}
    # The customer's day marker names the order that set it (a later claim changes nothing).
    claimed = db.orders.claim_markers({"2026-11-28|7": "someone else"}, recheck=True)
    assert claimed == {"2026-11-28|7": f"q3:0|{good}"}
    # What the partition reports for the rollups is what a recomputation from the store says.
    want = recompute(stored_orders(db), UTC, [{"reason": d.reason} for d in dead])
    assert {k: dict(d.counts) for k, d in result.deltas.items()} == {
        k: dict(d.counts) for k, d in want.items()
    }
    assert result.deltas[("dead_letter", "malformed_json")].counts["dead_letters"] == 1
    # The customer's history and the distinct-customer sets name the order and the customer.
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        totals, rows = read_history(conn, db.name, 7, 10, 0)
    assert (totals.orders, totals.spend_cents) == (1, round(float(price * 4) * 100))
    assert [(r.order_id, r.items, r.units) for r in rows] == [(good, 1, 4)]
    assert rows[0].created_at == doc["created_at"]  # to the millisecond, as MongoDB keeps it
    assert result.customers["all"] == {7}
    assert result.customers[f"day|{doc['created_at']:%Y-%m-%d}"] == {7}
    # A replay of the batch owns the same order and dead letters, and changes no history.
    again = write_partition(recs, config, "q3", 0, True)
    assert (again.new, again.deltas[("dead_letter", "malformed_json")].counts["dead_letters"]) == (
        1, 1)  # fmt: skip
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        assert read_history(conn, db.name, 7, 10, 0) == (totals, rows)
    # A later batch meeting the same records (a resend) owns none of them.
    later = write_partition(recs, config, "q3", 1, True)
    assert (later.new, ("dead_letter", "malformed_json") in later.deltas) == (0, False)
