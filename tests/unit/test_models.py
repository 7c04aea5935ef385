"""Order validation at the edge, including hostile inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from shopstream.domain import OrderEvent, OrderIn, order_event_json_schema

ITEM = {"product_id": 7, "quantity": 2}
RECEIVED = datetime(2026, 5, 1, 12, 31, 5, 250000, tzinfo=UTC)


def order(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"customer_id": 42, "items": [ITEM]}
    base.update(changes)
    return base


def errors_of(payload: object) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as info:
        OrderIn.model_validate(payload)
    return [(tuple(e["loc"]), e["type"]) for e in info.value.errors()]


def test_minimal_order_gets_id_and_time_when_turned_into_an_event() -> None:
    received = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    event = OrderIn.model_validate(order()).to_event(received)
    assert isinstance(event.order_id, UUID)
    assert event.created_at == received
    assert event.received_at == received
    assert event.schema_version == 1


def test_client_order_id_and_offset_timestamp_are_kept_and_normalised_to_utc() -> None:
    oid = "6f1c1a1e-6a43-4a43-9d9e-2f5a3e1c0b7d"
    parsed = OrderIn.model_validate(order(order_id=oid, created_at="2026-05-01T14:30:00+02:00"))
    event = parsed.to_event(RECEIVED)
    assert str(event.order_id) == oid
    assert event.created_at == datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    assert event.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (order(customer_id="42"), [(("customer_id",), "int_type")]),
        (order(customer_id=True), [(("customer_id",), "int_type")]),
        (order(customer_id=4.5), [(("customer_id",), "int_type")]),
        (order(customer_id=0), [(("customer_id",), "greater_than_equal")]),
        (order(customer_id=2**70), [(("customer_id",), "less_than_equal")]),
        (order(items=[]), [(("items",), "too_short")]),
        (order(items=[ITEM] * 101), [(("items",), "too_long")]),
        (
            order(items=[{"product_id": 7, "quantity": 0}]),
            [(("items", 0, "quantity"), "greater_than_equal")],
        ),
        (
            order(items=[{"product_id": 7, "quantity": 1001}]),
            [(("items", 0, "quantity"), "less_than_equal")],
        ),
        (order(items=[{"product_id": 7}]), [(("items", 0, "quantity"), "missing")]),
        (order(items=[{**ITEM, "price": 1}]), [(("items", 0, "price"), "extra_forbidden")]),
        (order(items="nope"), [(("items",), "list_type")]),
        (order(discount=10), [(("discount",), "extra_forbidden")]),
        (order(created_at="2026-05-01T12:00:00"), [(("created_at",), "timezone_aware")]),
        (order(created_at=1_700_000_000), [(("created_at",), "value_error")]),
        (order(created_at="yesterday"), [(("created_at",), "datetime_from_date_parsing")]),
        (order(created_at="0001-01-01T05:00:00Z"), [(("created_at",), "value_error")]),
        (order(created_at="9999-12-31T00:00:00-01:00"), [(("created_at",), "value_error")]),
        (order(order_id="not-a-uuid"), [(("order_id",), "uuid_parsing")]),
        (order(order_id=12), [(("order_id",), "value_error")]),
        ({"items": [ITEM]}, [(("customer_id",), "missing")]),
        ([], [((), "model_type")]),
        (None, [((), "model_type")]),
    ],
)
def test_invalid_orders_are_refused_with_field_level_errors(
    payload: object, expected: list[tuple[tuple[str | int, ...], str]]
) -> None:
    assert errors_of(payload) == expected


def test_whole_numbers_written_with_a_fraction_are_the_integers() -> None:
    # JSON Schema's `integer` (what the API's schema says) includes 4.0; JSON has one number.
    raw = b'{"customer_id": 4.0, "items": [{"product_id": 7e0, "quantity": 2.0}]}'
    event = OrderIn.model_validate_json(raw).to_event(RECEIVED)
    assert (event.customer_id, event.items[0].product_id, event.items[0].quantity) == (4, 7, 2)
    assert '"customer_id":4,' in event.model_dump_json()


def test_a_time_next_to_the_calendar_edges_is_kept_but_none_on_them() -> None:
    # An offset moves an instant on 0001-01-01 or 9999-12-31 out of the years `datetime`
    # holds; the day after the first (or before the last) is always in range.
    parsed = OrderIn.model_validate(order(created_at="0001-01-02T00:00:00+01:00"))
    assert parsed.created_at == datetime(1, 1, 1, 23, tzinfo=UTC)
    late = OrderIn.model_validate(order(created_at="9999-12-30T23:00:00-23:59"))
    assert late.created_at == datetime(9999, 12, 31, 22, 59, tzinfo=UTC)
    # An event (another producer's record) out of range is refused, not an OverflowError.
    with pytest.raises(ValidationError, match="years 1-9999"):
        OrderEvent.model_validate(
            {**order(created_at="0001-01-01T00:00:00+01:00"), "order_id": str(UUID(int=1)),
             "received_at": "2026-05-01T12:00:00Z"}
        )  # fmt: skip


def test_every_problem_is_reported_not_just_the_first() -> None:
    found = errors_of({"customer_id": "x", "items": [{"product_id": -1, "quantity": 0}], "z": 1})
    assert {loc for loc, _ in found} == {
        ("customer_id",),
        ("items", 0, "product_id"),
        ("items", 0, "quantity"),
        ("z",),
    }


def test_event_round_trips_through_json_unchanged() -> None:
    event = OrderIn.model_validate(order()).to_event(RECEIVED)
    again = OrderEvent.model_validate_json(event.model_dump_json())
    assert again == event
    assert event.kafka_key() == b"42"


def test_schema_file_in_repo_matches_the_model() -> None:
    path = Path(__file__).parents[2] / "schemas" / "order_event.v1.json"
    assert json.loads(path.read_text()) == order_event_json_schema(), (
        "schemas/order_event.v1.json is stale: run `shopstream schema --write`"
    )


def test_schema_requires_the_fields_consumers_rely_on() -> None:
    schema = order_event_json_schema()
    assert set(schema["required"]) >= {"order_id", "customer_id", "created_at", "items"}
    assert schema["additionalProperties"] is False
