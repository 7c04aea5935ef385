"""Dead letters: replay the ones whose cause has been fixed (`store.dead_letters` lists them).

The streaming job writes every record it cannot process to `dead_letters` (keyed by its Kafka
coordinates) and to the `orders.dlq` topic. Replaying re-produces the raw payload, unchanged,
to the orders topic once the reason no longer holds (the customer or product now exists in
PostgreSQL); the job then enriches it like any order. A replay that runs twice, or a payload
whose order already exists, is harmless: the first record of an order wins downstream.
Malformed JSON and schema violations are never replayed: the producer has to be fixed, and
the raw payload stays in the lake and the dead letter for that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from confluent_kafka import KafkaError, Message, Producer
from pydantic import ValidationError

from shopstream.config import Settings
from shopstream.domain.models import OrderEvent
from shopstream.messaging.clients import producer_config
from shopstream.store.protocols import Store
from shopstream.store.records import DeadLetter
from shopstream.streaming.reasons import UNKNOWN_CUSTOMER, UNKNOWN_PRODUCT

__all__ = ["ReplayReport", "replay"]

REPLAYABLE = (UNKNOWN_CUSTOMER, UNKNOWN_PRODUCT)


@dataclass
class ReplayReport:
    replayed: list[str] = field(default_factory=list)  # dead-letter ids
    still_failing: dict[str, str] = field(default_factory=dict)  # id -> why
    not_replayable: int = 0


def _missing(conn: psycopg.Connection[Any], table: str, ids: set[int]) -> set[int]:
    if not ids:
        return set()
    rows = conn.execute(f"SELECT id FROM {table} WHERE id = ANY(%s)", (list(ids),)).fetchall()  # noqa: S608 - fixed table names
    return ids - {r[0] for r in rows}


def replay(
    store: Store,
    settings: Settings,
    reason: str | None = None,
    dry_run: bool = False,
) -> ReplayReport:
    """Re-produces every unreplayed dead letter whose cause is fixed to the orders topic;
    marks it replayed."""
    topic = settings.orders_topic
    report = ReplayReport()
    candidates: list[tuple[DeadLetter, OrderEvent]] = []
    for doc in store.dead_letters.unreplayed(reason):
        if doc.reason not in REPLAYABLE:
            report.not_replayable += 1
            continue
        try:
            candidates.append((doc, OrderEvent.model_validate_json(doc.payload)))
        except ValidationError as exc:
            report.still_failing[doc.key] = f"payload is not a valid event: {exc}"
    with psycopg.connect(settings.postgres_url) as conn:
        no_customer = _missing(conn, "customers", {e.customer_id for _, e in candidates})
        no_product = _missing(
            conn, "products", {i.product_id for _, e in candidates for i in e.items}
        )
    ready: list[tuple[DeadLetter, OrderEvent]] = []
    for doc, event in candidates:
        if event.customer_id in no_customer:
            report.still_failing[doc.key] = f"customer {event.customer_id} still unknown"
        elif missing := sorted({i.product_id for i in event.items} & no_product):
            report.still_failing[doc.key] = f"products {missing} still unknown"
        else:
            ready.append((doc, event))
    if dry_run or not ready:
        report.replayed = [doc.key for doc, _ in ready]
        return report

    producer = Producer(producer_config(settings, client_id="shopstream-dlq-replay"))
    errors: list[str] = []
    for doc, event in ready:

        def delivered(err: KafkaError | None, msg: Message, doc: DeadLetter = doc) -> None:
            if err is not None:
                errors.append(f"{doc.key}: {err}")
                return
            # Marked only once Kafka holds the record: a crash before this replays it again,
            # which is harmless (the order's first record wins).
            at = f"{msg.topic()}:{msg.partition()}:{msg.offset()}"
            store.dead_letters.mark_replayed(doc.key, datetime.now(UTC), at)
            report.replayed.append(doc.key)

        producer.produce(topic, doc.payload.encode(), event.kafka_key(), on_delivery=delivered)
        producer.poll(0)
    remaining = producer.flush(settings.produce_timeout_s)
    if errors or remaining:
        raise RuntimeError(
            f"{len(errors) + remaining} dead letters were not re-produced to {topic} "
            f"(is Kafka up at {settings.kafka_servers}?): {errors[:3]}"
        )
    return report
