"""The FerretDB implementation's rollup layout, on the real MongoDB role: buckets written once per
batch, exact after replays, rebuilt and checked; the indexes earlier versions made."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql

from shopstream.config import Settings
from shopstream.db.migrate import migrate
from shopstream.domain.documents import day_products_key, day_products_keys
from shopstream.domain.rollups import customer_sets, order_deltas, recompute
from shopstream.stack.probes import pg_superuser_dsn
from shopstream.store.client import StoreDatabase
from shopstream.store.customer_history import (
    HistoryWriter,
    drop_old_schema,
    drop_store,
    ensure_table,
    history_schema,
    read_history,
)
from shopstream.store.customer_sets import CustomerSetWriter
from shopstream.store.customer_sets import stored_differences as stored_set_differences
from shopstream.store.ferretdb import FerretStore
from shopstream.store.rollup_store import (
    RollupWriter,
    differences,
    drop_unused_indexes,
    rebuild,
    stored,
)
from tests.utils import fresh_store
from tests.utils.orders import order_doc, write_orders

pytestmark = pytest.mark.integration


@pytest.fixture
def db(stack: Settings) -> Iterator[StoreDatabase]:
    with fresh_store(stack, "it_rollups") as store:
        assert isinstance(store, FerretStore)  # the layout of this implementation
        yield store.db


def order(oid: str, customer: int, minute: int, product: int, qty: int) -> dict[str, Any]:
    created = datetime(2026, 11, 28, 10, minute, tzinfo=UTC)
    return {
        "_id": oid,
        "created_at": created,
        "day": "2026-11-28",
        "customer": {"id": customer},
        "items": [
            {
                "product_id": product,
                "name": f"p{product}",
                "category": "Books" if product % 2 else "Toys",
                "quantity": qty,
                "line_total": round(qty * 2.35, 2),
            }
        ],
        "ingest": {"query_id": "q1", "batch_id": 0},
    }


def stored_counts(db: StoreDatabase, kind: str, key: str) -> tuple[int, int, int]:
    counts = stored(db)[(kind, key)]
    return counts["orders"], counts["units"], counts["sales_cents"]


def test_a_replayed_batch_adds_only_where_the_crashed_run_did_not(
    db: StoreDatabase,
) -> None:
    first = [order(f"o{i}", i % 3, i % 2, i % 4 + 1, i % 5 + 1) for i in range(20)]
    second = [order(f"p{i}", i % 4, i % 3, i % 5 + 1, 2) for i in range(15)]
    writer = RollupWriter(db)
    assert writer.apply("q1:0", order_deltas(first, UTC)) > 0

    # Batch 1 crashes after writing only the minute documents (with their categories); the
    # restarted job (a new writer, empty cache) replays the whole batch.
    deltas = order_deltas(second, UTC)
    partial = {k: v for k, v in deltas.items() if k[0] in ("minute", "minute_category")}
    wrote = RollupWriter(db).apply("q1:1", partial)
    assert wrote == 3  # minutes 10:00, 10:01, 10:02
    restarted = RollupWriter(db)
    # The hour, the day, the all-time total and five product shards.
    assert restarted.apply("q1:1", deltas) == 1 + 1 + 1 + 5
    assert restarted.apply("q1:1", deltas) == 0  # and again: nothing changes

    everything = recompute(first + second, UTC)
    for key, delta in everything.items():
        if key[0] != "day":  # distinct customers of a day come from the sink's markers
            assert stored_counts(db, *key) == (
                delta.counts["orders"],
                delta.counts["units"],
                delta.counts["sales_cents"],
            )
    doc = db.rollup_minute.find_one({"_id": "2026-11-28T10:00Z"})
    assert doc is not None
    assert doc["minute"] == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert doc["sales"] == doc["sales_cents"] / 100
    assert [c["category"] for c in doc["categories"]] == ["Books", "Toys"]
    assert sum(c["sales_cents"] for c in doc["categories"]) == doc["sales_cents"]
    shard = db.rollup_day_product.find_one({"_id": day_products_key("2026-11-28", 3)})
    assert shard is not None
    (entry,) = [p for p in shard["products"] if p["product_id"] == 3]
    assert (entry["name"], entry["category"]) == ("p3", "Books")
    assert entry["sales"] == entry["sales_cents"] / 100
    # A reader gets a day's products from the day's shard keys alone.
    shards = [db.rollup_day_product.find_one({"_id": k}) for k in day_products_keys("2026-11-28")]
    products = {p["product_id"] for s in shards if s for p in s["products"]}
    assert products == {1, 2, 3, 4, 5}


def test_a_large_batch_written_as_concurrent_commands_is_exact(
    db: StoreDatabase,
) -> None:
    # 200 orders over 30 minutes and 60 products: ~70 documents, split into two commands in
    # flight at once (the job's driver does this), then a second batch on top of them.
    orders = [order(f"c{i}", i % 7, i % 30, i % 60 + 1, i % 3 + 1) for i in range(200)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        writer = RollupWriter(db, pool=pool)
        assert writer.apply("q1:0", order_deltas(orders[:150], UTC)) > 40
        assert writer.apply("q1:1", order_deltas(orders[150:], UTC)) > 40
    want = recompute(orders, UTC)
    for key, delta in want.items():
        if key[0] != "day":  # distinct customers of a day come from the sink's markers
            expected = tuple(delta.counts[n] for n in ("orders", "units", "sales_cents"))
            assert stored_counts(db, *key) == expected, key


def late(doc: dict[str, Any], hour: int) -> dict[str, Any]:
    """`doc` placed at `hour`:mm instead, and received three days later (history)."""
    created = doc["created_at"].replace(hour=hour)
    return {**doc, "created_at": created, "received_at": created + timedelta(days=3)}


def test_late_minutes_stay_exact_in_their_hours_through_a_replay_and_a_tiny_cache(
    db: StoreDatabase,
) -> None:
    # Live orders in 10:00-10:03 and history in hours 9, 10 and 11, the history's batches
    # interleaving hours so that a one-document cache keeps missing; batch 1 crashes after its
    # minute documents and is replayed by a restarted job.
    live = [order(f"l{i}", i % 5, i % 4, i % 6 + 1, 1) for i in range(12)]
    old = [late(order(f"h{i}", i % 7, i % 9, i % 6 + 1, 2), 9 + i % 3) for i in range(30)]
    ancient = order("h-424", 1, 7, 1, 1)  # the API takes any year: strftime writes "424"
    old.append({**ancient, "created_at": ancient["created_at"].replace(year=424),
                "received_at": ancient["created_at"]})  # fmt: skip
    batches = [live[:6] + old[:10], live[6:] + old[10:20], old[20:]]
    sets = CustomerSetWriter(db, cache_size=1)
    RollupWriter(db).apply("q1:0", order_deltas(batches[0], UTC))
    sets.apply(customer_sets(batches[0], UTC))
    deltas = order_deltas(batches[1], UTC)
    minutes = {k: v for k, v in deltas.items() if k[0] in ("minute", "minute_category")}
    RollupWriter(db).apply("q1:1", minutes)  # whole minute documents, then the crash
    restarted = RollupWriter(db, cache_size=1)
    restarted.apply("q1:1", deltas)
    restarted.apply("q1:1", deltas)  # a second replay changes nothing
    restarted.apply("q1:2", order_deltas(batches[2], UTC))
    for batch in batches[1:]:
        sets.apply(customer_sets(batch, UTC))
        sets.apply(customer_sets(batch, UTC))  # unions: again, harmlessly
    everything = live + old
    want = recompute(everything, UTC)
    assert any(kind == "late_minute" for kind, _ in want)
    for key, delta in want.items():
        if key[0] != "day":  # distinct customers of a day come from the sink's markers
            expected = tuple(delta.counts[n] for n in ("orders", "units", "sales_cents"))
            assert stored_counts(db, *key) == expected, key
    assert stored(db).keys() - want.keys() <= {("day", "2026-11-28")}
    assert stored_set_differences(db, everything, UTC) == []
    hour = db.rollup_hour.find_one({"_id": "2026-11-28T10Z"})
    assert hour is not None
    assert [m["minute_key"] for m in hour["minutes"]] == sorted(
        {
            f"2026-11-28T10:{o['created_at'].minute:02d}Z"
            for o in old
            if (o["created_at"].year, o["created_at"].hour) == (2026, 10)
        }
    )
    assert "minutes" not in (db.rollup_minute.find_one({"_id": "2026-11-28T10:00Z"}) or {})


def test_a_new_query_counts_from_its_own_batch_zero(db: StoreDatabase) -> None:
    # A job on a fresh checkpoint is a new query: its batch 0 is not a replay of the old one.
    x, y = order("x", 1, 0, 1, 1), order("y", 2, 0, 1, 3)
    RollupWriter(db).apply("q1:7", order_deltas([x], UTC))
    RollupWriter(db).apply("q2:0", order_deltas([y], UTC))
    assert stored_counts(db, "minute", "2026-11-28T10:00Z") == (2, 4, 940)


def test_rebuild_recomputes_everything_from_the_orders(db: StoreDatabase) -> None:
    orders = [order(f"o{i}", i % 3, i % 2, i % 4 + 1, 1) for i in range(10)]
    db.orders.insert_many(orders)
    RollupWriter(db).apply("q1:0", order_deltas(orders[:4], UTC))  # stale, incomplete rollups
    assert differences(db, db.orders.find(), UTC)
    assert rebuild(db, ZoneInfo("UTC")) > 0
    assert differences(db, db.orders.find(), UTC) == []
    day = db.rollup_day.find_one({"_id": "2026-11-28"})
    assert day is not None
    assert (day["orders"], day["customers"]) == (10, 3)


def test_check_finds_a_stale_history_and_rebuild_all_makes_it_exact(stack: Settings) -> None:
    # Customers' histories live in the PostgreSQL schema named after the store: `check` compares
    # them, row by row, with the orders, and `rebuild_all` rewrites them (and every rollup).
    now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    orders = [
        order_doc(i % 4, now - timedelta(hours=7 * i, microseconds=1234), [(i % 5 + 1, 2, 999)])
        for i in range(30)
    ]
    utc = ZoneInfo("UTC")
    with fresh_store(stack, "it_history") as store:
        assert isinstance(store, FerretStore)
        db = store.db
        write_orders(store, orders[:20], utc, stack)  # histories of 20
        db.orders.insert_many(orders[20:])  # and 10 orders the writers never saw
        RollupWriter(db).apply("late", order_deltas(orders[20:], UTC))
        diffs = [d for d in store.rollups.check(utc, stack.postgres_url) if "customer_orders" in d]
        assert len(diffs) == len({o["customer"]["id"] for o in orders[20:]}), diffs
        assert store.rollups.rebuild(utc, stack.postgres_url) >= 30
        assert store.rollups.check(utc, stack.postgres_url) == []
        with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
            for customer in range(4):
                mine = sorted(
                    (o for o in orders if o["customer"]["id"] == customer),
                    key=lambda o: (o["created_at"], o["_id"]),
                    reverse=True,
                )
                totals, rows = read_history(conn, db.name, customer, 100, 0)
                assert [r.order_id for r in rows] == [o["_id"] for o in mine]
                assert totals.orders == len(mine)
                assert totals.spend_cents == sum(round(o["order_total"] * 100) for o in mine)
            # A store the job never wrote has no history, and says so without an error.
            assert read_history(conn, "it_history_none", 1, 10, 0)[1] == []


def test_a_store_named_like_the_role_hides_none_of_the_roles_tables(stack: Settings) -> None:
    """With the defaults the database and PostgreSQL's role are both `shopstream`: a history
    schema named like the role came first on its search path, and the next migration made
    empty copies of `customers` and `products` in it (layout 4; fixed by layout 5)."""

    def where(conn: psycopg.Connection[Any], table: str) -> str:
        found = conn.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = %s::regclass",
            (table,),
        ).fetchone()
        assert found is not None
        return str(found[0])

    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        (role,) = conn.execute("SELECT current_user").fetchone()  # type: ignore[misc]
        customers = conn.execute("SELECT count(*) FROM customers").fetchone()
        try:
            HistoryWriter(stack.postgres_url, role).write([order_doc(1, datetime.now(UTC), [])])
            # what the next `shopstream up` runs: with the schema first on the search path it
            # found no `schema_migrations` and applied every migration there again
            assert migrate(stack.postgres_url) == []
            assert {where(conn, t) for t in ("customers", "products", "schema_migrations")} == {
                "public"
            }
            assert conn.execute("SELECT count(*) FROM customers").fetchone() == customers
            # A store of layout 4 (the schema named like the role): the rebuild removes it,
            # and says what to check when a migration has put tables there.
            ensure_table(conn, role)
            conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(history_schema(role)), sql.Identifier(role)))  # fmt: skip
            assert drop_old_schema(conn, role) is None
            assert conn.execute("SELECT to_regnamespace(%s)", (role,)).fetchone() == (None,)
            conn.execute(sql.SQL("CREATE SCHEMA {s}; CREATE TABLE {s}.customers (id int)").format(
                s=sql.Identifier(role)))  # fmt: skip
            message = drop_old_schema(conn, role)
            assert message is not None
            assert "holds customers" in message
        finally:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(role)))
            drop_store(conn, role)


def test_a_writer_without_create_writes_a_history_table_made_for_it(stack: Settings) -> None:
    # On an existing PostgreSQL an administrator may make the store's table and grant the
    # job's user only what writing needs (docs/streaming.md): the writer must not need CREATE.
    store, role = f"it_grants_{uuid.uuid4().hex[:8]}", f"writer_{uuid.uuid4().hex[:8]}"
    order = order_doc(5, datetime(2026, 11, 28, 9, 30, tzinfo=UTC), [(2, 3, 450)], oid="g-1")
    superuser = pg_superuser_dsn(stack).rsplit("/", 1)[0] + "/shopstream"
    with psycopg.connect(superuser, autocommit=True) as admin:
        ensure_table(admin, store)
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {s} TO {r}; "
                    "GRANT SELECT, INSERT ON {s}.customer_orders TO {r}").format(
                s=sql.Identifier(history_schema(store)), r=sql.Identifier(role))
        )  # fmt: skip
        try:
            url = stack.postgres_url.replace("://shopstream@", f"://{role}@")
            can_create = "SELECT has_database_privilege('shopstream', 'CREATE')"
            with psycopg.connect(url) as conn:  # PUBLIC has TEMPORARY, not CREATE (defaults)
                assert conn.execute(can_create).fetchone() == (False,)
            writer = HistoryWriter(url, store)
            try:
                assert writer.write([order]) == 1
                assert writer.write([order]) == 0  # a replay: the same row, not a second
            finally:
                writer.close()
            totals, rows = read_history(admin, store, 5, 10, 0)
            assert (totals.orders, [r.order_id for r in rows]) == (1, ["g-1"])
        finally:
            drop_store(admin, store)
            admin.execute(
                sql.SQL("DROP OWNED BY {r}; DROP ROLE {r}").format(r=sql.Identifier(role))
            )


def test_the_indexes_earlier_versions_made_are_dropped_and_a_users_own_stays(
    db: StoreDatabase,
) -> None:
    """No reader uses them and each costs every insert (FerretDB parses the document per
    indexed field); an index a user added for their own queries is not ours to drop."""
    assert drop_unused_indexes(db) == []  # nothing there yet, not even the collections
    db.orders.create_index([("customer.id", 1), ("created_at", -1)])
    db.rollup_hour.create_index([("hour", 1)])
    db.orders.create_index([("created_at", 1)], name="users_own")
    assert sorted(drop_unused_indexes(db)) == [
        "orders.customer.id_1_created_at_-1",
        "rollup_hour.hour_1",
    ]
    assert set(db.orders.index_information()) == {"_id_", "users_own"}
    assert set(db.rollup_hour.index_information()) == {"_id_"}
    assert drop_unused_indexes(db) == []
