"""The pure core: order models and validation rules. Imports nothing heavy."""

from shopstream.domain.models import (
    SCHEMA_VERSION,
    OrderBatchIn,
    OrderEvent,
    OrderIn,
    OrderItem,
    order_event_json_schema,
)

__all__ = [
    "SCHEMA_VERSION",
    "OrderBatchIn",
    "OrderEvent",
    "OrderIn",
    "OrderItem",
    "order_event_json_schema",
]
