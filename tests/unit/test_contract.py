"""The API's OpenAPI document: exact bounds, the configured batch size, bodies that fit it."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from pydantic import BaseModel, ValidationError

from shopstream.config import Settings
from shopstream.domain import OrderBatchIn, OrderIn
from shopstream.domain.models import MAX_ID
from shopstream.ingestion import create_app
from shopstream.ingestion.contract import (
    Accepted,
    BatchResult,
    NotAcknowledged,
    OrderResult,
    Problem,
)
from shopstream.ingestion.intake import Outcome
from tests.utils.api_contract import refusals

OID = UUID("6f1c1a1e-6a43-4a43-9d9e-2f5a3e1c0b7d")
UNKNOWN = {"loc": ["customer_id"], "msg": "unknown customer id 9", "type": "unknown_customer"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    served = create_app(Settings(max_batch_orders=7)).openapi()
    return json.loads(json.dumps(served))  # as /openapi.json serves it


def body_of(document: dict[str, Any], path: str) -> dict[str, Any]:
    media: dict[str, Any] = document["paths"][path]["post"]["requestBody"]["content"]
    return media["application/json"]


def test_id_bounds_are_exact_integers_not_doubles(document: dict[str, Any]) -> None:
    # FastAPI's own models would make 2**63 - 1 a double, i.e. 2**63: one id too many.
    order = body_of(document, "/order")["schema"]
    product = order["properties"]["items"]["items"]["properties"]["product_id"]
    for bounds in (order["properties"]["customer_id"], product):
        assert (bounds["minimum"], bounds["maximum"]) == (1, MAX_ID)
        assert isinstance(bounds["maximum"], int)


def test_a_batch_is_documented_as_orders_up_to_the_configured_size(
    document: dict[str, Any],
) -> None:
    orders = body_of(document, "/orders")["schema"]["properties"]["orders"]
    assert (orders["minItems"], orders["maxItems"]) == (1, 7)
    assert orders["items"] == body_of(document, "/order")["schema"]


def test_every_status_states_the_bodies_the_routes_write(document: dict[str, Any]) -> None:
    def refs(path: str, code: str) -> set[str]:
        schema = document["paths"][path]["post"]["responses"][code]["content"]
        schema = schema["application/json"]["schema"]
        return {s["$ref"].rsplit("/", 1)[-1] for s in schema.get("anyOf", [schema])}

    assert refs("/order", "202") == {"Accepted"}
    assert refs("/order", "422") == {"Problem"}
    assert refs("/order", "503") == {"NotAcknowledged", "Problem"}
    assert refs("/orders", "202") == refs("/orders", "207") == {"BatchResult"}
    assert refs("/orders", "422") == refs("/orders", "503") == {"BatchResult", "Problem"}
    for path in ("/order", "/orders"):
        for code in ("401", "413", "429"):
            assert refs(path, code) == {"Problem"}


def test_the_documented_request_examples_are_valid_orders(document: dict[str, Any]) -> None:
    for example in body_of(document, "/order")["examples"].values():
        OrderIn.model_validate(example["value"])
    for example in body_of(document, "/orders")["examples"].values():
        for order in OrderBatchIn.model_validate(example["value"]).orders:
            OrderIn.model_validate(order)


@pytest.mark.parametrize("model", [Problem, Accepted, BatchResult])
def test_the_documented_response_examples_fit_their_models(model: type[BaseModel]) -> None:
    examples = model.model_json_schema()["examples"]
    assert examples
    for example in examples:
        model.model_validate(example)


def fits(model: type[BaseModel], body: dict[str, Any]) -> None:
    model.model_validate(body)
    assert set(body) <= set(model.model_fields), f"{model.__name__} lacks {set(body)}"


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome("accepted", OID),
        Outcome("invalid", None, [{"loc": ["items"], "msg": "too short", "type": "too_short"}]),
        Outcome("invalid", OID, [UNKNOWN]),
        Outcome("unavailable", OID, [{"loc": [], "msg": "timed out", "type": "kafka"}]),
    ],
    ids=["accepted", "invalid", "unknown-id", "unavailable"],
)
def test_each_outcome_is_written_as_its_documented_result(outcome: Outcome) -> None:
    fits(OrderResult, outcome.as_json(3))
    if outcome.status == "accepted":
        fits(Accepted, outcome.as_json())
    if outcome.status == "unavailable":
        fits(NotAcknowledged, {"detail": "Kafka did not acknowledge", **outcome.as_json()})


def test_a_batch_422_is_either_a_batch_result_or_a_problem_never_both() -> None:
    batch = {
        "accepted": 0,
        "rejected": 1,
        "results": [Outcome("invalid", OID, [UNKNOWN]).as_json(0)],
    }
    problem = {"detail": [{"loc": ["body", "orders"], "msg": "at most 7", "type": "too_long"}]}
    fits(BatchResult, batch)
    fits(Problem, problem)
    with pytest.raises(ValidationError):
        Problem.model_validate(batch)
    with pytest.raises(ValidationError):
        BatchResult.model_validate(problem)


def test_the_contract_checks_read_the_refusals_of_both_bodies() -> None:
    kafka = {"loc": [], "msg": "timed out", "type": "kafka"}
    batch = {
        "accepted": 1,
        "rejected": 2,
        "results": [
            Outcome("accepted", OID).as_json(0),
            Outcome("invalid", None, [UNKNOWN]).as_json(1),
            Outcome("unavailable", OID, [kafka]).as_json(2),
        ],
    }
    assert refusals(batch) == [UNKNOWN]  # an unavailable order was not refused
    assert refusals({"detail": [UNKNOWN]}) == [UNKNOWN]
    assert refusals({"detail": "rate limit"}) == [{"type": None, "msg": "rate limit"}]
    assert refusals([]) == []
