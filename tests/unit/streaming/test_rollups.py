"""The rollup arithmetic (pure): what orders add to which buckets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shopstream.streaming.rollups import merge, order_deltas, recompute
from shopstream.streaming.sink import same_record


def order(oid: str, customer: int, at: str, *lines: tuple[int, str, int, float]) -> dict[str, Any]:
    created = datetime.fromisoformat(at).replace(tzinfo=UTC)
    return {
        "_id": oid,
        "created_at": created,
        "day": created.strftime("%Y-%m-%d"),
        "customer": {"id": customer},
        "items": [
            {"product_id": p, "name": f"p{p}", "category": c, "quantity": q, "line_total": t}
            for p, c, q, t in lines
        ],
    }


A = order("a", 1, "2026-11-28T10:15:30", (1, "Books", 2, 19.98), (2, "Toys", 1, 5.10))
B = order("b", 1, "2026-11-28T10:15:59", (1, "Books", 1, 9.99), (3, "Books", 3, 0.30))
C = order("c", 2, "2026-11-28T10:16:00", (2, "Toys", 4, 20.40))
D = order("d", 1, "2026-11-29T00:00:00", (2, "Toys", 1, 5.10))


def counts(deltas: Any, collection: str, key: str) -> dict[str, int]:
    return dict(deltas[(collection, key)].counts)


def test_each_order_counts_once_per_bucket_with_exact_cents() -> None:
    d = order_deltas([A, B, C])
    assert counts(d, "minute", "2026-11-28T10:15Z") == {
        "orders": 2,
        "units": 7,
        "sales_cents": 1998 + 510 + 999 + 30,
    }
    assert counts(d, "minute", "2026-11-28T10:16Z") == {
        "orders": 1,
        "units": 4,
        "sales_cents": 2040,
    }
    # `orders` per category counts orders with a line in it: B has two Books lines.
    assert counts(d, "minute_category", "2026-11-28T10:15Z|Books") == {
        "orders": 2,
        "units": 6,
        "sales_cents": 1998 + 999 + 30,
    }
    assert counts(d, "day_product", "2026-11-28|2") == {
        "orders": 2,
        "units": 5,
        "sales_cents": 2550,
    }
    labels = d[("day_product", "2026-11-28|2")].labels
    assert labels == {"day": "2026-11-28", "product_id": 2, "name": "p2", "category": "Toys"}
    assert d[("minute", "2026-11-28T10:16Z")].labels["minute"] == datetime(
        2026, 11, 28, 10, 16, tzinfo=UTC
    )


def test_partial_deltas_merge_to_the_whole() -> None:
    assert {k: v.counts for k, v in merge([order_deltas([A, C]), order_deltas([B])]).items()} == {
        k: v.counts for k, v in order_deltas([A, B, C]).items()
    }


def test_recompute_counts_distinct_customers_per_day() -> None:
    d = recompute([A, B, C, D])
    assert counts(d, "day", "2026-11-28")["customers"] == 2
    assert counts(d, "day", "2026-11-29")["customers"] == 1
    assert counts(d, "day", "2026-11-28")["orders"] == 3


def test_an_order_without_ingest_ids_belongs_to_no_batch() -> None:
    # Documents written before the job recorded its batch (an older version) must not crash
    # the sink, and must never count as a batch's own.
    mine = {"topic": "orders", "partition": 1, "offset": 7, "query_id": "q", "batch_id": 3}
    assert not same_record({"topic": "orders"}, mine)
    assert not same_record(None, mine)
    assert same_record({**mine, "processed_at": "any"}, mine)
    assert not same_record({**mine, "offset": 8}, mine)  # another record of the same order
