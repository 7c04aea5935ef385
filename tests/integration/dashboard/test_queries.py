"""The dashboard's query layer against the real store: every number matches a brute-force
count of the orders it was built from."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from shopstream.config import Settings
from shopstream.domain.rollups import LIVE_HORIZON, is_late
from shopstream.domain.windows import WINDOWS, spans, trend_buckets
from shopstream.store.customer_pages import history
from shopstream.store.protocols import Store
from shopstream.store.records import Totals
from shopstream.store.rollup_reader import OTHER
from tests.utils import fresh_store
from tests.utils.orders import at_utc, expected, order_doc, random_orders, write_orders

pytestmark = pytest.mark.integration

NOW = at_utc("2026-11-28T14:05:30")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def db(stack: Settings) -> Iterator[Store]:
    with fresh_store(stack, "it_dash") as store:
        yield store


@pytest.fixture
def loaded(db: Store, stack: Settings) -> tuple[Store, list[dict[str, Any]]]:
    orders = random_orders(NOW, 900, days=45)
    write_orders(db, orders, NEW_YORK, stack)
    return db, orders


def as_expected(t: Totals) -> tuple[int, int, int, int]:
    return t.orders, t.units, t.sales_cents, t.customers


def test_every_window_and_its_previous_match_the_orders_exactly(
    loaded: tuple[Store, list[dict[str, Any]]], stack: Settings
) -> None:
    db, orders = loaded
    assert db.rollups.check(NEW_YORK, stack.postgres_url) == []  # the writers left them exact
    reader = db.rollups.reader(NEW_YORK)
    first: dict[str, object] = {}
    for window in WINDOWS:
        kpis = first[window] = reader.kpis(window, NOW)
        current, previous = spans(window, NOW, NEW_YORK)
        if current is None:
            everything = expected(orders, NOW - timedelta(days=999), NOW + timedelta(days=1))
            assert as_expected(kpis.current) == tuple(vars(everything).values())
            assert kpis.previous is None
            continue
        assert previous is not None
        assert kpis.previous is not None
        want = expected(orders, current.start, current.end)
        before = expected(orders, previous.start, previous.end)
        assert as_expected(kpis.current) == tuple(vars(want).values()), window
        assert as_expected(kpis.previous) == tuple(vars(before).values()), window
        assert want.orders > 0, f"the data must exercise {window}"
    # Read again: closed buckets now come from the cache, with the same (checked) answers.
    for window in WINDOWS:
        assert reader.kpis(window, NOW) == first[window], window


def test_history_at_the_edges_of_every_window_counts_exactly(db: Store, stack: Settings) -> None:
    # Orders placed in the minutes around each window's edges, some live and some imported
    # long after (late: their minutes are kept in their hours' documents): every window's
    # partial hours read both.
    rng = random.Random(7)
    edges = [s.start for w in WINDOWS for s in spans(w, NOW, NEW_YORK) if s is not None]
    orders = []
    for i in range(400):
        at = rng.choice(edges) + timedelta(seconds=rng.uniform(-5400, 5400))
        doc = order_doc(rng.randint(1, 40), at, [(rng.randint(1, 30), 1, rng.randint(99, 999))],
                        oid=f"edge-{i:04d}")  # fmt: skip
        if i % 2 and at < NOW - LIVE_HORIZON:
            doc["received_at"] = doc["ingest"]["kafka_timestamp"] = NOW
        orders.append(doc)
    assert sum(is_late(o) for o in orders) > 100
    write_orders(db, orders, NEW_YORK, stack)
    assert db.rollups.check(NEW_YORK, stack.postgres_url) == []
    reader = db.rollups.reader(NEW_YORK)
    for window in WINDOWS:
        kpis_of = _both(reader.kpis(window, NOW))
        for span, kpis in zip(spans(window, NOW, NEW_YORK), kpis_of, strict=True):
            if span is None or kpis is None:
                continue
            want = expected(orders, span.start, span.end)
            assert as_expected(kpis) == tuple(vars(want).values()), window


def _both(kpis: Any) -> tuple[Totals, Totals | None]:
    return kpis.current, kpis.previous


def test_trends_have_the_windows_granularity_and_top_categories_plus_other(
    loaded: tuple[Store, list[dict[str, Any]]],
) -> None:
    db, orders = loaded
    reader = db.rollups.reader(NEW_YORK)
    for window, level in [("15m", "minute"), ("1h", "minute"), ("today", "hour"),
                          ("7d", "hour"), ("30d", "day"), ("all", "day")]:  # fmt: skip
        trend = reader.trend(window, NOW, top_n=3)
        assert trend.granularity == level
        buckets = trend_buckets(window, NOW, NEW_YORK, reader.first_day())
        assert trend.starts == [b.start for b in buckets]
        for i, b in enumerate(buckets):
            want = expected(orders, b.start, b.end)
            assert (trend.orders[i], trend.sales_cents[i]) == (want.orders, want.sales_cents)
            # Category lines (top 3 and Other) add up to the bucket's sales.
            assert sum(line[i] for line in trend.categories.values()) == want.sales_cents
        assert len(trend.categories) <= 4
    trend = reader.trend("7d", NOW, top_n=3)
    by_category: dict[str, int] = {}
    start = trend.starts[0]
    for o in orders:
        if o["created_at"] >= start:
            for item in o["items"]:
                cents = round(item["line_total"] * 100)
                by_category[item["category"]] = by_category.get(item["category"], 0) + cents
    top = sorted(by_category, key=lambda c: (-by_category[c], c))[:3]
    assert list(trend.categories) == [*top, OTHER]
    assert sum(trend.categories[OTHER]) == sum(v for c, v in by_category.items() if c not in top)


def test_top_products_today_are_the_business_days_best_sellers(
    loaded: tuple[Store, list[dict[str, Any]]],
) -> None:
    db, orders = loaded
    reader = db.rollups.reader(NEW_YORK)
    today = reader.today(NOW)
    start, _ = spans("today", NOW, NEW_YORK)
    assert start is not None
    sales: dict[int, int] = {}
    for o in orders:
        if o["created_at"] >= start.start:
            for item in o["items"]:
                cents = round(item["line_total"] * 100)
                sales[item["product_id"]] = sales.get(item["product_id"], 0) + cents
    rows = reader.top_products(today, 5)
    assert [(r.product_id, r.sales_cents) for r in rows] == sorted(
        sales.items(), key=lambda kv: (-kv[1], kv[0])
    )[:5]
    assert rows[0].name == f"Product {rows[0].product_id}"


def test_an_empty_store_answers_zeros(db: Store) -> None:
    reader = db.rollups.reader(NEW_YORK)
    first: dict[str, object] = {}
    for window in WINDOWS:
        kpis = first[window] = reader.kpis(window, NOW)
        assert kpis.current == Totals()
        assert kpis.current.average_order_cents is None
    trend = reader.trend("1h", NOW)
    assert trend.orders == [0] * 60
    assert trend.categories == {}
    assert reader.top_products(reader.today(NOW)) == []
    assert reader.freshness().newest_order_at is None


def test_a_customers_history_pages_newest_first_with_exact_totals(
    db: Store, stack: Settings
) -> None:
    # 25 orders of customer 7 over three months, and other customers' orders around them.
    mine = [
        order_doc(7, NOW - timedelta(days=3 * i, minutes=i), [(i % 30 + 1, 1 + i % 3, 250 + i)])
        for i in range(25)
    ]
    others = [order_doc(8 + i % 5, NOW - timedelta(hours=i), [(3, 1, 999)]) for i in range(20)]
    write_orders(db, mine + others, NEW_YORK, stack)
    newest = sorted(mine, key=lambda o: o["created_at"], reverse=True)
    conn = psycopg.connect(stack.postgres_url, autocommit=True)
    first = history(conn, db, 7, page=1, page_size=10)
    assert (first.orders, first.pages, first.page) == (25, 3, 1)
    assert first.spend_cents == sum(round(o["order_total"] * 100) for o in mine)
    assert [e.order_id for e in first.entries] == [o["_id"] for o in newest[:10]]
    assert first.last_order_at is not None
    assert first.first_order_at is not None
    assert abs(first.last_order_at - newest[0]["created_at"]) < timedelta(milliseconds=1)
    assert abs(first.first_order_at - newest[-1]["created_at"]) < timedelta(milliseconds=1)
    detail = first.details[newest[0]["_id"]]
    assert detail["items"] == newest[0]["items"]
    last = history(conn, db, 7, page=3, page_size=10)
    assert [e.order_id for e in last.entries] == [o["_id"] for o in newest[20:]]
    assert history(conn, db, 7, page=99, page_size=10).page == 3  # clamped
    nobody = history(conn, db, 424242)
    conn.close()
    assert (nobody.orders, nobody.entries, nobody.pages) == (0, [], 1)
