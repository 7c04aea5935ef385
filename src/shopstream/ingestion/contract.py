"""The API's contract as its OpenAPI document states it: bodies per route and status, examples.

The routes write their bodies with orjson (see docs/benchmarks.md), not through these models;
the models are the promise, checked against `Outcome.as_json` by unit tests and against the
running API by schemathesis (`tests/integration/test_api_contract.py`).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from shopstream.domain import OrderBatchIn, OrderIn

__all__ = [
    "BATCH_RESPONSES",
    "ORDER_RESPONSES",
    "READY_RESPONSES",
    "Accepted",
    "BatchResult",
    "FieldError",
    "NotAcknowledged",
    "OrderResult",
    "Problem",
    "Readiness",
    "with_request_bodies",
]

_ORDER_ID = "6f1c1a1e-6a43-4a43-9d9e-2f5a3e1c0b7d"


class FieldError(BaseModel):
    """One validation error: where (`loc`, a path into the body), what and which kind."""

    loc: list[str | int]
    msg: str
    type: str = Field(
        description="A pydantic error type (`missing`, `int_type`, ...), `json_invalid`, "
        "`too_long`, `unknown_customer`, `unknown_product` or `kafka`."
    )


class Problem(BaseModel):
    """An answer about the request as a whole: a sentence, or the fields that are wrong."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"detail": "missing or invalid API key: send it in the X-API-Key header"},
                {"detail": [{"loc": ["body", "items"], "msg": "...", "type": "too_short"}]},
            ]
        }
    )

    detail: str | list[FieldError]


class Accepted(BaseModel):
    """Kafka acknowledged the order (acks=all)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "accepted", "order_id": _ORDER_ID}]}
    )

    status: Literal["accepted"]
    order_id: UUID


class NotAcknowledged(BaseModel):
    """`POST /order`: Kafka did not acknowledge the record; resend it with this `order_id`."""

    detail: str
    status: Literal["unavailable"]
    order_id: UUID
    errors: list[FieldError]


class OrderResult(BaseModel):
    """The outcome of `orders[index]` of a batch."""

    index: int = Field(ge=0)
    status: Literal["accepted", "invalid", "unavailable"]
    # Absent, never null, when the order was too malformed to carry one.
    order_id: UUID | SkipJsonSchema[None] = None
    errors: list[FieldError] = Field(
        default_factory=list, description="Absent when accepted; `loc` is a path into the order."
    )


_UNKNOWN: dict[str, Any] = {
    "loc": ["customer_id"],
    "msg": "unknown customer id 999999",
    "type": "unknown_customer",
}


class BatchResult(BaseModel):
    """One result per order of a batch, in the batch's order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 1,
                    "rejected": 1,
                    "results": [
                        {"index": 0, "status": "accepted", "order_id": _ORDER_ID},
                        {"index": 1, "status": "invalid", "errors": [_UNKNOWN]},
                    ],
                }
            ]
        }
    )

    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)
    results: list[OrderResult]


class Readiness(BaseModel):
    ready: bool
    kafka: str = Field(description='"ok" or "unavailable: <why>"')
    postgres: str = Field(description='"ok" or "unavailable: <why>"')


def _answer(model: Any, description: str) -> dict[str, Any]:
    return {"model": model, "description": description}


_GUARDS: dict[int | str, dict[str, Any]] = {
    401: _answer(Problem, "Missing or invalid X-API-Key."),
    413: _answer(Problem, "Body above the configured size."),
    429: _answer(Problem, "Rate limit exceeded; see Retry-After."),
}

ORDER_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_GUARDS,
    422: _answer(Problem, "Not JSON, a field is wrong, or an id is unknown."),
    503: _answer(
        NotAcknowledged | Problem,
        "Kafka did not acknowledge the order (`NotAcknowledged`), or PostgreSQL is "
        "unavailable (`Problem`); see Retry-After.",
    ),
}

# A BatchResult has no `detail` and a Problem no `results`: either key tells a client which
# one it got (docs/decisions.md, 38).
BATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_GUARDS,
    207: _answer(BatchResult, "Mixed outcomes: see each result."),
    422: _answer(
        BatchResult | Problem,
        "Every order was invalid (`BatchResult`), or the envelope is: not JSON, no "
        "`orders`, an empty or too long list (`Problem`).",
    ),
    503: _answer(
        BatchResult | Problem,
        "Kafka took none of the orders (`BatchResult`), or PostgreSQL is unavailable "
        "(`Problem`); see Retry-After.",
    ),
}

READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: _answer(Readiness, "Kafka or PostgreSQL unreachable."),
}


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON Schema with its `$defs` references inlined."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def _body(model: type[BaseModel], examples: dict[str, Any]) -> dict[str, Any]:
    schema = _inline_refs(model.model_json_schema())
    media = {"schema": schema, "examples": {k: {"value": v} for k, v in examples.items()}}
    return {"required": True, "content": {"application/json": media}}


# Ids 1..N exist once `shopstream seed` ran (the simulator's and the test stack's catalog).
_ORDER = {
    "order_id": _ORDER_ID,
    "customer_id": 1,
    "created_at": "2026-11-28T14:30:00+01:00",
    "items": [{"product_id": 3, "quantity": 2}],
}
_MINIMAL = {"customer_id": 2, "items": [{"product_id": 5, "quantity": 1}]}
_LATER = {
    "customer_id": 3,
    "created_at": "2026-11-28T15:05:00Z",
    "items": [{"product_id": 7, "quantity": 1}, {"product_id": 3, "quantity": 4}],
}


def with_request_bodies(openapi: dict[str, Any], max_batch_orders: int) -> dict[str, Any]:
    """FastAPI's document of the app plus the bodies of `POST /order` and `POST /orders`.

    The routes read their bodies themselves (to refuse an oversized one before parsing it),
    so FastAPI does not know them; they are added to its finished document because its
    OpenAPI models hold numbers as doubles, where the id bound 2**63 - 1 becomes 2**63.
    """
    batch = _body(OrderBatchIn, {"batch": {"orders": [_MINIMAL, _LATER]}})
    batch["content"]["application/json"]["schema"]["properties"]["orders"]["maxItems"] = (
        max_batch_orders
    )
    paths = openapi["paths"]
    paths["/order"]["post"]["requestBody"] = _body(OrderIn, {"order": _ORDER, "minimal": _MINIMAL})
    paths["/orders"]["post"]["requestBody"] = batch
    return openapi
