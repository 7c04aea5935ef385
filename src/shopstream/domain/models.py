"""Order models: what a client may send, and the event shopstream writes to Kafka.

Inputs are validated strictly: numbers must be JSON numbers (no "12" for 12, no `true`;
4.0 is 4, as in JSON Schema), timestamps must be RFC 3339 strings carrying an offset, and
unknown fields are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetPydanticSchema,
    StrictInt,
)

__all__ = [
    "MAX_ITEMS",
    "MAX_QUANTITY",
    "SCHEMA_VERSION",
    "OrderBatchIn",
    "OrderEvent",
    "OrderIn",
    "OrderItem",
    "order_event_json_schema",
]

SCHEMA_VERSION = 1
MAX_ITEMS = 100
MAX_QUANTITY = 1000
# Postgres BIGINT bounds the ids; anything larger cannot exist in the dimension tables.
MAX_ID = 2**63 - 1
# The calendar's first and last days: an offset can move an instant on them out of the years
# 1-9999 that `datetime` holds, so a client's timestamp may not fall on them (and the API's
# schema says so with a pattern, which JSON Schema's `date-time` format alone cannot).
EDGE_DAYS = ("0001-01-01", "9999-12-31")


def _must_be_string(value: Any) -> Any:
    if not isinstance(value, str | datetime | UUID):
        raise ValueError("must be a string")
    return value


def _whole_number(value: Any) -> Any:
    # JSON (RFC 8259) and JSON Schema's `integer` do not tell 4.0 from 4: neither do we.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0, which datetime lacks
        raise ValueError("outside the years 1-9999 once in UTC") from None


def _not_on_an_edge_day(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(EDGE_DAYS):
        raise ValueError(f"must not fall on {' or '.join(EDGE_DAYS)}")
    return value


WholeNumber = BeforeValidator(_whole_number)
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID), WholeNumber]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_must_be_string), AfterValidator(_to_utc)]
ClientTimestamp = Annotated[Timestamp, BeforeValidator(_not_on_an_edge_day)]
OrderId = Annotated[UUID, BeforeValidator(_must_be_string)]


class OrderItem(BaseModel):
    """One line item: a product and how many of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: Id
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY), WholeNumber]


class OrderIn(BaseModel):
    """An order as a client submits it to `POST /order`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: OrderId | None = Field(
        default=None, description="Client-chosen idempotency key; assigned when absent."
    )
    customer_id: Id
    created_at: ClientTimestamp | None = Field(
        default=None,
        description="RFC 3339 with an offset, not on the calendar's first or last day; "
        "defaults to the time received.",
        json_schema_extra={"pattern": f"^(?!{'|'.join(EDGE_DAYS)})"},
    )
    items: Annotated[list[OrderItem], Field(min_length=1, max_length=MAX_ITEMS)]

    def to_event(self, received_at: datetime) -> OrderEvent:
        """The Kafka event for this order, filling the defaults."""
        return OrderEvent(
            order_id=self.order_id or uuid4(),
            customer_id=self.customer_id,
            created_at=self.created_at or received_at,
            received_at=received_at,
            items=self.items,
        )


# An order of a batch as the envelope sees it: any JSON object, validated later on its own
# (one bad order must not reject the batch), documented as what it must be, an `OrderIn`.
BatchedOrder = Annotated[
    dict[str, Any],
    GetPydanticSchema(
        get_pydantic_json_schema=lambda _, handler: handler(OrderIn.__pydantic_core_schema__)
    ),
]


class OrderBatchIn(BaseModel):
    """The envelope of `POST /orders`; each order is validated on its own."""

    model_config = ConfigDict(extra="forbid")

    orders: Annotated[list[BatchedOrder], Field(min_length=1)]


class OrderEvent(BaseModel):
    """The record value on the `orders` topic (JSON), keyed by customer id."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="OrderEvent")

    schema_version: Literal[1] = 1
    order_id: UUID
    customer_id: Id
    created_at: Timestamp = Field(description="When the order was placed (UTC).")
    received_at: Timestamp = Field(description="When the ingestion API accepted it (UTC).")
    items: Annotated[list[OrderItem], Field(min_length=1, max_length=MAX_ITEMS)]

    def kafka_key(self) -> bytes:
        return str(self.customer_id).encode()


def order_event_json_schema() -> dict[str, Any]:
    """JSON Schema of the Kafka record value, as kept in `schemas/`."""
    schema = OrderEvent.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://shopstream.dev/schemas/order_event.v{SCHEMA_VERSION}.json"
    return schema
