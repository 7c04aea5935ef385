"""What a customer's history keeps of an order (pure; the table itself: test_rollups, test_sink)."""

from __future__ import annotations

from datetime import UTC, datetime

from shopstream.store.customer_history import HistoryRow, history_row
from tests.utils.orders import order_doc


def test_a_history_row_is_the_orders_summary_to_the_millisecond() -> None:
    at = datetime(2026, 2, 28, 23, 59, 59, 987654, tzinfo=UTC)
    order = order_doc(42, at, [(3, 2, 1999), (4, 1, 5)], oid="o-1")
    assert history_row(order) == HistoryRow(
        order_id="o-1",
        customer_id=42,
        created_at=datetime(2026, 2, 28, 23, 59, 59, 987000, tzinfo=UTC),
        total_cents=2 * 1999 + 5,
        items=2,
        units=3,
    )


def test_an_order_read_back_from_mongodb_gives_the_same_row() -> None:
    # A replay may own an order it reads back (MongoDB keeps milliseconds): the same row, so
    # ON CONFLICT DO NOTHING leaves the first write exact.
    at = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC)
    fresh = order_doc(7, at, [(1, 1, 333)], oid="o-2")
    stored = {**fresh, "created_at": at.replace(microsecond=123000)}
    assert history_row(fresh) == history_row(stored)


def test_a_naive_date_read_by_a_client_that_is_not_tz_aware_is_utc() -> None:
    at = datetime(2026, 10, 25, 0, 30, 0, 5000, tzinfo=UTC)
    order = order_doc(3, at, [(2, 1, 100)], oid="o-3")
    naive = {**order, "created_at": at.replace(tzinfo=None)}
    assert history_row(naive) == history_row(order)
