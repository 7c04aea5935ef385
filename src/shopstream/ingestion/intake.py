"""Accepting orders, independent of HTTP: validate, check ids, produce, report per order.

Every order gets exactly one outcome. `accepted` means the broker acknowledged the record
(acks=all); nothing else is ever reported as accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from pydantic import ValidationError

from shopstream.domain import OrderEvent, OrderIn
from shopstream.ingestion.metrics import IngestMetrics
from shopstream.ingestion.producer import ProduceError, Record

__all__ = ["CatalogUnavailableError", "OrderIntake", "Outcome", "field_errors"]

Status = Literal["accepted", "invalid", "unavailable"]


class Producer(Protocol):
    async def send_many(self, records: Sequence[Record]) -> list[ProduceError | None]: ...


class IdLookup(Protocol):
    async def unknown(self, ids: set[int]) -> set[int]: ...


class CatalogUnavailableError(Exception):
    """PostgreSQL could not be asked whether the ids exist."""


@dataclass
class Outcome:
    status: Status
    order_id: UUID | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self, index: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {} if index is None else {"index": index}
        body["status"] = self.status
        if self.order_id is not None:
            body["order_id"] = str(self.order_id)
        if self.errors:
            body["errors"] = self.errors
        return body


def field_errors(exc: ValidationError, prefix: Sequence[str | int] = ()) -> list[dict[str, Any]]:
    """Pydantic errors as `{loc, msg, type}`, without echoing the (possibly huge) input."""
    return [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def _unknown_id(loc: list[str | int], kind: str, value: int) -> dict[str, Any]:
    return {"loc": loc, "msg": f"unknown {kind} id {value}", "type": f"unknown_{kind}"}


class OrderIntake:
    def __init__(
        self,
        topic: str,
        producer: Producer,
        customers: IdLookup,
        products: IdLookup,
        metrics: IngestMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._topic = topic
        self._producer = producer
        self._customers = customers
        self._products = products
        self._metrics = metrics
        self._clock = clock

    async def submit(self, raw_orders: Sequence[Any]) -> list[Outcome]:
        """One outcome per input, in input order."""
        received_at = self._clock()
        outcomes: list[Outcome | None] = [None] * len(raw_orders)
        valid: dict[int, OrderIn] = {}
        for i, raw in enumerate(raw_orders):
            try:
                valid[i] = OrderIn.model_validate(raw)
            except ValidationError as exc:
                outcomes[i] = Outcome("invalid", errors=field_errors(exc))
        if len(valid) < len(raw_orders):
            self._metrics.outcome["invalid"].inc(len(raw_orders) - len(valid))
        for i, errors in (await self._unknown_ids(valid)).items():
            outcomes[i] = Outcome("invalid", valid.pop(i).order_id, errors)
            self._metrics.outcome["unknown_id"].inc()
        events = {i: order.to_event(received_at) for i, order in valid.items()}
        for i, outcome in zip(events, await self._produce(list(events.values())), strict=True):
            outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    async def _unknown_ids(self, orders: dict[int, OrderIn]) -> dict[int, list[dict[str, Any]]]:
        if not orders:
            return {}
        customer_ids = {o.customer_id for o in orders.values()}
        product_ids = {item.product_id for o in orders.values() for item in o.items}
        try:
            bad_customers = await self._customers.unknown(customer_ids)
            bad_products = await self._products.unknown(product_ids)
        except Exception as exc:
            raise CatalogUnavailableError(str(exc)) from exc
        found: dict[int, list[dict[str, Any]]] = {}
        if not bad_customers and not bad_products:
            return found
        for i, order in orders.items():
            errors = []
            if order.customer_id in bad_customers:
                errors.append(_unknown_id(["customer_id"], "customer", order.customer_id))
            for j, item in enumerate(order.items):
                if item.product_id in bad_products:
                    errors.append(
                        _unknown_id(["items", j, "product_id"], "product", item.product_id)
                    )
            if errors:
                found[i] = errors
        return found

    async def _produce(self, events: list[OrderEvent]) -> list[Outcome]:
        if not events:
            return []
        records = [Record(self._topic, e.kafka_key(), e.model_dump_json().encode()) for e in events]
        started = time.perf_counter()
        errors = await self._producer.send_many(records)
        self._metrics.produce_seconds.observe(time.perf_counter() - started)
        outcomes = []
        for event, err in zip(events, errors, strict=True):
            if err is None:
                outcomes.append(Outcome("accepted", event.order_id))
                continue
            self._metrics.produce_failures.labels(err.kind).inc()
            outcomes.append(
                Outcome(
                    "unavailable", event.order_id, [{"loc": [], "msg": err.reason, "type": "kafka"}]
                )
            )
        accepted = sum(o.status == "accepted" for o in outcomes)
        self._metrics.outcome["accepted"].inc(accepted)
        if accepted < len(outcomes):
            self._metrics.outcome["unavailable"].inc(len(outcomes) - accepted)
        return outcomes
