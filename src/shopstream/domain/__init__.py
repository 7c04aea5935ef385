"""The pure core: order models and validation rules, the clock, the documents' names and keys,
the rollup arithmetic and the dashboard's windows. Imports nothing heavy and does no I/O."""

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
