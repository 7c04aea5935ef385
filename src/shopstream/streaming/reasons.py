"""Why a record became a dead letter (kept free of Spark so light tools can import it)."""

from __future__ import annotations

__all__ = ["MALFORMED_JSON", "SCHEMA_VIOLATION", "UNKNOWN_CUSTOMER", "UNKNOWN_PRODUCT"]

MALFORMED_JSON = "malformed_json"  # the value is not JSON
SCHEMA_VIOLATION = "schema_violation"  # JSON, but not a valid order event
UNKNOWN_CUSTOMER = "unknown_customer"  # the customer is not in PostgreSQL (yet)
UNKNOWN_PRODUCT = "unknown_product"  # a product is not in PostgreSQL (yet)
