"""HTTP routes of the ingestion API."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import APIKeyHeader
from pydantic import ValidationError

from shopstream.domain import OrderBatchIn
from shopstream.ingestion.contract import (
    BATCH_RESPONSES,
    ORDER_RESPONSES,
    READY_RESPONSES,
    Accepted,
    BatchResult,
    Readiness,
)
from shopstream.ingestion.guards import parse_json, read_body
from shopstream.ingestion.intake import CatalogUnavailableError, Outcome, field_errors
from shopstream.ingestion.state import AppState

__all__ = ["router"]

RETRY_AFTER_S = "2"

router = APIRouter()
_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


# Dependencies are `async def`: FastAPI runs plain `def` ones in a thread pool, which costs
# two thread hand-offs per request (see docs/benchmarks.md).
async def _state(request: Request) -> AppState:
    return request.app.state.shopstream


State = Annotated[AppState, Depends(_state)]


async def _caller(state: State, key: Annotated[str | None, Depends(_key_header)]) -> str:
    return state.api_keys.identify(key)


Caller = Annotated[str, Depends(_caller)]


def _json(body: object, code: int, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), code, headers, media_type="application/json")


async def _submit(state: AppState, orders: list[Any]) -> list[Outcome]:
    try:
        return await state.intake.submit(orders)
    except CatalogUnavailableError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"cannot check customer/product ids, PostgreSQL is unavailable: {exc}",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from exc


@router.post(
    "/order",
    status_code=202,
    response_model=Accepted,
    response_description="Kafka acknowledged the order.",
    responses=ORDER_RESPONSES,
    summary="Submit one order",
    description=(
        "Answers 202 only after Kafka acknowledged the record (acks=all). Resending the same "
        "`order_id` is safe: both records carry the same id and downstream keeps one."
    ),
)
async def post_order(request: Request, state: State, caller: Caller) -> Response:
    state.limiter.take(caller)
    raw = parse_json(await read_body(request, state.settings.max_order_bytes))
    (outcome,) = await _submit(state, [raw])
    if outcome.status == "accepted":
        return _json(outcome.as_json(), status.HTTP_202_ACCEPTED)
    if outcome.status == "invalid":
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in outcome.errors]
        return _json({"detail": errors}, status.HTTP_422_UNPROCESSABLE_CONTENT)
    return _json(
        {
            "detail": "Kafka did not acknowledge the order; retry with the same order_id",
            **outcome.as_json(),
        },
        status.HTTP_503_SERVICE_UNAVAILABLE,
        {"Retry-After": RETRY_AFTER_S},
    )


@router.post(
    "/orders",
    status_code=202,
    response_model=BatchResult,
    response_description="Kafka acknowledged every order.",
    responses=BATCH_RESPONSES,
    summary="Submit a batch of orders",
    description=(
        "Each order is validated and acknowledged on its own; `results[i]` is the outcome of "
        "`orders[i]`. 202 when all were accepted, 422 when all were invalid, 503 when Kafka "
        "took none, 207 otherwise."
    ),
)
async def post_orders(request: Request, state: State, caller: Caller) -> Response:
    raw = parse_json(await read_body(request, state.settings.max_batch_bytes))
    try:
        batch = OrderBatchIn.model_validate(raw)
    except ValidationError as exc:
        raise HTTPException(422, detail=field_errors(exc, ("body",))) from None
    limit = state.settings.max_batch_orders
    if len(batch.orders) > limit:
        detail = [
            {
                "loc": ["body", "orders"],
                "msg": f"at most {limit} orders per batch",
                "type": "too_long",
            }
        ]
        raise HTTPException(422, detail=detail)
    state.limiter.take(caller, cost=len(batch.orders))
    outcomes = await _submit(state, batch.orders)
    return _batch_response(outcomes)


def _batch_response(outcomes: list[Outcome]) -> Response:
    accepted = sum(o.status == "accepted" for o in outcomes)
    body = {
        "accepted": accepted,
        "rejected": len(outcomes) - accepted,
        "results": [o.as_json(i) for i, o in enumerate(outcomes)],
    }
    kinds = {o.status for o in outcomes}
    if kinds == {"accepted"}:
        return _json(body, status.HTTP_202_ACCEPTED)
    if kinds == {"invalid"}:
        return _json(body, status.HTTP_422_UNPROCESSABLE_CONTENT)
    if kinds == {"unavailable"}:
        return _json(body, status.HTTP_503_SERVICE_UNAVAILABLE, {"Retry-After": RETRY_AFTER_S})
    return _json(body, status.HTTP_207_MULTI_STATUS)


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: Kafka and PostgreSQL reachable",
    response_model=Readiness,
    responses=READY_RESPONSES,
)
async def readyz(state: State) -> Response:
    checks = {}
    for name, check in (("kafka", state.kafka_ready), ("postgres", state.postgres_ready)):
        try:
            await asyncio.wait_for(check(), timeout=3)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unavailable: {exc or type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return _json({"ready": ready, **checks}, 200 if ready else 503)
