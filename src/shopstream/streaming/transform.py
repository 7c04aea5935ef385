"""Kafka records -> enriched order documents and dead letters, in plain Python.

The pure core of the enrichment query, run once per Spark partition (`streaming.sink`) and
driven without Spark by the unit tests. Every record leaves as exactly one of: an order
document, a typed dead letter, or a duplicate of an earlier record of the same order in the
same input (the first record of an order is the order; resends change nothing).

Validation is the ingestion API's own model (`OrderEvent`), so the job accepts exactly the
events the API writes and names the offending fields of anything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from pydantic import ValidationError

from shopstream.domain.documents import batch_token, dead_letter_key
from shopstream.domain.models import OrderEvent
from shopstream.streaming.reasons import (
    MALFORMED_JSON,
    SCHEMA_VIOLATION,
    UNKNOWN_CUSTOMER,
    UNKNOWN_PRODUCT,
)

__all__ = [
    "Customer",
    "KafkaRecord",
    "Lookup",
    "Product",
    "Transformed",
    "dead_letter_document",
    "order_document",
    "parse",
    "transform",
]


class KafkaRecord(NamedTuple):
    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: datetime


class Customer(NamedTuple):
    id: int
    name: str
    segment: str
    city: str
    country: str


class Product(NamedTuple):
    id: int
    name: str
    category: str
    price: Decimal


class Lookup(Protocol):
    """Where `transform` finds customers and products (`streaming.dimensions.Dimensions`)."""

    def customers(self, ids: set[int]) -> Mapping[int, Customer]: ...

    def products(self, ids: set[int]) -> Mapping[int, Product]: ...


@dataclass
class Transformed:
    orders: list[dict[str, Any]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0


_CENT = Decimal("0.01")


def parse(value: bytes | None) -> OrderEvent | tuple[str, str]:
    """An event, or (reason, detail) naming what is wrong with the value."""
    if not value:
        return MALFORMED_JSON, "value is empty"
    try:
        return OrderEvent.model_validate_json(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            return MALFORMED_JSON, "value is not JSON"
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in errors[:5]
        )
        return SCHEMA_VIOLATION, f"invalid: {fields}"


def transform(
    records: Iterable[KafkaRecord],
    lookup: Lookup,
    processed_at: datetime,
    query_id: str,
    batch_id: int,
) -> Transformed:
    """Parses, collapses resends (first record by partition and offset wins), enriches."""
    out = Transformed()
    batch = batch_token(query_id, batch_id)
    events: dict[str, tuple[KafkaRecord, OrderEvent]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        parsed = parse(record.value)
        if isinstance(parsed, tuple):
            out.dead.append(dead_letter_document(record, *parsed, processed_at, batch))
        elif str(parsed.order_id) in events:
            out.duplicates += 1
        else:
            events[str(parsed.order_id)] = (record, parsed)
    customers = lookup.customers({e.customer_id for _, e in events.values()})
    products = lookup.products({i.product_id for _, e in events.values() for i in e.items})
    for record, event in events.values():
        customer = customers.get(event.customer_id)
        missing = sorted({i.product_id for i in event.items if i.product_id not in products})
        if customer is None:
            reason = (UNKNOWN_CUSTOMER, f"customer {event.customer_id}")
            out.dead.append(dead_letter_document(record, *reason, processed_at, batch))
        elif missing:
            detail = f"products {', '.join(map(str, missing))}"
            out.dead.append(
                dead_letter_document(record, UNKNOWN_PRODUCT, detail, processed_at, batch)
            )
        else:
            ingest = _ingest(record, processed_at, query_id, batch_id)
            out.orders.append(order_document(event, customer, products, ingest))
    return out


def order_document(
    event: OrderEvent,
    customer: Customer,
    products: Mapping[int, Product],
    ingest: dict[str, Any],
) -> dict[str, Any]:
    """The enriched order (layout in the README); money exact in decimals, stored to cents."""
    items = []
    total = Decimal(0)
    for item in event.items:
        product = products[item.product_id]
        line = (product.price * item.quantity).quantize(_CENT)
        total += line
        items.append(
            {
                "product_id": item.product_id,
                "name": product.name,
                "category": product.category,
                "unit_price": _money(product.price),
                "quantity": item.quantity,
                "line_total": _money(line),
            }
        )
    created = event.created_at.astimezone(UTC)
    return {
        "_id": str(event.order_id),
        "order_id": str(event.order_id),
        "created_at": created,
        "received_at": event.received_at.astimezone(UTC),
        "day": created.strftime("%Y-%m-%d"),
        "customer": customer._asdict(),
        "items": items,
        "item_count": len(items),
        "units": sum(i.quantity for i in event.items),
        "order_total": _money(total),
        "ingest": ingest,
    }


def dead_letter_document(
    record: KafkaRecord, reason: str, detail: str, processed_at: datetime, batch: str = ""
) -> dict[str, Any]:
    """`batch` is the `batch_token` of the batch that met it (which counts it by reason)."""
    return {
        "_id": dead_letter_key(record.topic, record.partition, record.offset),
        "reason": reason,
        "detail": detail,
        "payload": (record.value or b"").decode("utf-8", errors="replace"),
        "kafka": _coordinates(record),
        "failed_at": processed_at,
        "batch": batch,
    }


def _ingest(
    record: KafkaRecord, processed_at: datetime, query_id: str, batch_id: int
) -> dict[str, Any]:
    return {
        **_coordinates(record),
        "processed_at": processed_at,
        "query_id": query_id,
        "batch_id": batch_id,
    }


def _coordinates(record: KafkaRecord) -> dict[str, Any]:
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "kafka_timestamp": record.timestamp,
    }


def _money(value: Decimal) -> float:
    # Decimal is not BSON-encodable (Decimal128 on FerretDB v1 is untested); an amount in
    # cents survives the round trip through a double.
    return round(float(value), 2)
