"""What schemathesis checks on the ingestion API beyond its built-in checks.

`tests/integration/schemathesis.toml` relaxes two built-in checks where the API is right to
differ from what a schema alone implies; the checks here hold those relaxations to their
reasons. Loaded by `tests/integration/test_api_contract.py`, and by the CLI through the
`hooks` setting of that file.
"""

from __future__ import annotations

from typing import Any

import schemathesis

__all__ = [
    "UNKNOWN_ID_TYPES",
    "invalid_batch_reports_an_invalid_order",
    "refusals",
    "valid_data_refused_only_for_unknown_ids",
]

ORDER_PATHS = ("/order", "/orders")
# A schema cannot say which ids exist: the only reasons to refuse a schema-valid order.
UNKNOWN_ID_TYPES = frozenset({"unknown_customer", "unknown_product"})


def refusals(body: Any) -> list[dict[str, Any]]:
    """The errors that refused a request or some of its orders (a Problem's, or the results')."""
    if not isinstance(body, dict):
        return []
    if "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, list) else [{"type": None, "msg": detail}]
    results = body.get("results", [])
    return [e for r in results if r.get("status") == "invalid" for e in r.get("errors", [])]


def _mode_is(case: schemathesis.Case, positive: bool) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive is positive


@schemathesis.check
def valid_data_refused_only_for_unknown_ids(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A schema-valid order is refused (422, or an invalid result of a 207) only for an id
    PostgreSQL does not know; `positive_data_acceptance` is told to take the 422."""
    if not _mode_is(case, positive=True) or case.path not in ORDER_PATHS:
        return None
    if response.status_code not in (207, 422):
        return None
    errors = refusals(response.json())
    if response.status_code == 422 and not errors:
        raise AssertionError("schema-valid data refused without a reason")
    others = [e for e in errors if e.get("type") not in UNKNOWN_ID_TYPES]
    if others:
        raise AssertionError(f"schema-valid data refused for more than unknown ids: {others}")
    return None


@schemathesis.check
def invalid_batch_reports_an_invalid_order(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A batch with a schema-violating order is answered 207 only with that order refused.

    Each order of `POST /orders` stands alone, so the others may be accepted (a 207, which
    `negative_data_rejection` is told to take); a 207 without an invalid result would mean
    a violating order was accepted.
    """
    if not _mode_is(case, positive=False) or case.path != "/orders":
        return None
    if response.status_code == 207 and not refusals(response.json()):
        raise AssertionError("a schema-violating batch answered 207 without an invalid order")
    return None
