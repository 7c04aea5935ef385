"""The rollup arithmetic (pure): what orders add to which buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shopstream.domain.documents import hour_key, minute_hour_key, minute_key
from shopstream.domain.rollups import (
    LIVE_HORIZON,
    customer_sets,
    dead_letter_deltas,
    is_late,
    merge,
    merge_sets,
    order_deltas,
    recompute,
)
from shopstream.store.customer_sets import late_minutes_key
from shopstream.store.ferretdb import same_record


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
    d = order_deltas([A, B, C], UTC)
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


def test_hours_and_the_total_hold_every_order() -> None:
    d = order_deltas([A, B, C, D], UTC)
    assert counts(d, "hour", "2026-11-28T10Z") == {
        "orders": 3,
        "units": 11,
        "sales_cents": 1998 + 510 + 999 + 30 + 2040,
    }
    assert counts(d, "hour_category", "2026-11-28T10Z|Toys") == {
        "orders": 2,
        "units": 5,
        "sales_cents": 2550,
    }
    assert counts(d, "total", "all") == {"orders": 4, "units": 12, "sales_cents": 6087}
    assert d[("hour", "2026-11-28T10Z")].labels == {"hour": datetime(2026, 11, 28, 10, tzinfo=UTC)}


def test_days_are_business_days() -> None:
    # D (00:00 UTC on the 29th) is still the 28th in New York; A, B, C (10:15 UTC) too.
    d = order_deltas([A, B, C, D], ZoneInfo("America/New_York"))
    assert counts(d, "day", "2026-11-28")["orders"] == 4
    assert ("day", "2026-11-29") not in d
    assert counts(d, "day_product", "2026-11-28|2")["orders"] == 3
    # In Tokyo (UTC+9) 10:15 UTC is already 19:15 on the 28th, midnight UTC the 29th.
    tokyo = order_deltas([A, D], ZoneInfo("Asia/Tokyo"))
    assert counts(tokyo, "day", "2026-11-28")["orders"] == 1
    assert counts(tokyo, "day", "2026-11-29")["orders"] == 1
    new_york = recompute([A, B, C, D], ZoneInfo("America/New_York"))
    assert counts(new_york, "day", "2026-11-28")["customers"] == 2


def test_customer_sets_name_who_ordered_in_each_bucket() -> None:
    sets = customer_sets([A, B, C, D], UTC)
    assert sets == {
        "minute|2026-11-28T10:15Z": {1},
        "minute|2026-11-28T10:16Z": {2},
        "minute|2026-11-29T00:00Z": {1},
        "hour|2026-11-28T10Z": {1, 2},
        "hour|2026-11-29T00Z": {1},
        "day|2026-11-28": {1, 2},
        "day|2026-11-29": {1},
        "all": {1, 2},
    }
    parts = merge_sets([customer_sets([A], UTC), customer_sets([C, D], UTC)])
    assert parts == sets


def test_dead_letters_count_by_reason() -> None:
    d = dead_letter_deltas([{"reason": "x"}, {"reason": "y"}, {"reason": "x"}], {})
    assert counts(d, "dead_letter", "x") == {"dead_letters": 2}
    assert d[("dead_letter", "y")].labels == {"reason": "y"}


def test_partial_deltas_merge_to_the_whole() -> None:
    assert {
        k: v.counts for k, v in merge([order_deltas([A, C], UTC), order_deltas([B], UTC)]).items()
    } == {k: v.counts for k, v in order_deltas([A, B, C], UTC).items()}


def test_recompute_counts_distinct_customers_per_day() -> None:
    d = recompute([A, B, C, D], UTC)
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


def arrived(doc: dict[str, Any], after: timedelta) -> dict[str, Any]:
    """`doc` as it reached Kafka `after` its `created_at` (naive, as Spark gives it)."""
    appended = (doc["created_at"] + after).replace(tzinfo=None)
    return {**doc, "ingest": {"kafka_timestamp": appended}}


def test_an_order_is_late_only_beyond_the_live_horizon() -> None:
    assert not is_late(A)  # nothing says when it arrived: live
    assert not is_late(arrived(A, LIVE_HORIZON))
    assert is_late(arrived(A, LIVE_HORIZON + timedelta(seconds=1)))
    assert not is_late(arrived(A, -timedelta(hours=5)))  # a client clock ahead of the broker
    # The API's `received_at` decides when the document has it (a shifted or frozen platform
    # clock moves it with `created_at`; Kafka's timestamp is always real time).
    shifted = {**arrived(A, timedelta(days=900)), "received_at": A["created_at"]}
    assert not is_late(shifted)
    assert is_late({**A, "received_at": A["created_at"] + timedelta(hours=3)})


def test_a_late_order_keeps_its_minute_apart_and_counts_everywhere_else() -> None:
    late_b = arrived(B, timedelta(days=40))
    live = order_deltas([A, B, C], UTC)
    mixed = order_deltas([A, late_b, C], UTC)
    # B's minute numbers move to late_minute; A stays in the minute with its categories.
    assert counts(mixed, "minute", "2026-11-28T10:15Z") == {
        "orders": 1, "units": 3, "sales_cents": 1998 + 510,
    }  # fmt: skip
    assert counts(mixed, "late_minute", "2026-11-28T10:15Z") == {
        "orders": 1, "units": 4, "sales_cents": 999 + 30,
    }  # fmt: skip
    assert mixed[("late_minute", "2026-11-28T10:15Z")].labels == {"minute_key": "2026-11-28T10:15Z"}
    assert counts(mixed, "minute_category", "2026-11-28T10:15Z|Books") == {
        "orders": 1, "units": 2, "sales_cents": 1998,
    }  # fmt: skip
    # A minute's numbers are the two kinds together, and every coarser bucket is unchanged.
    for field in ("orders", "units", "sales_cents"):
        assert (
            mixed[("minute", "2026-11-28T10:15Z")].counts[field]
            + mixed[("late_minute", "2026-11-28T10:15Z")].counts[field]
            == live[("minute", "2026-11-28T10:15Z")].counts[field]
        )
    minutes = ("minute", "minute_category", "late_minute")
    coarse = {k: v.counts for k, v in live.items() if k[0] not in minutes}
    assert {k: v.counts for k, v in mixed.items() if k[0] not in minutes} == coarse


def test_a_late_orders_customer_is_in_its_minutes_late_set() -> None:
    sets = customer_sets([A, arrived(C, timedelta(hours=3))], UTC)
    assert sets["minute|2026-11-28T10:15Z"] == {1}
    assert "minute|2026-11-28T10:16Z" not in sets
    assert sets["late_minute|2026-11-28T10:16Z"] == {2}
    assert sets["hour|2026-11-28T10Z"] == {1, 2}
    assert sets["day|2026-11-28"] == {1, 2}


def test_minute_keys_find_their_hour_whatever_the_years_digits() -> None:
    # strftime writes the year 424 as "424": keys are split at their colon, not by position
    for year in (424, 2026):
        at = datetime(year, 1, 1, 0, 5, tzinfo=UTC)
        assert minute_hour_key(minute_key(at)) == hour_key(at.replace(minute=0))
        assert late_minutes_key(minute_key(at)) == (f"late_minutes|{hour_key(at)}", "05")
