"""Writes enriched orders and dead letters to MongoDB, idempotently.

Documents are keyed by `_id`: an order by its `order_id`, a dead letter by its Kafka
coordinates. An order is inserted by its first record and never rewritten (a resend or a
replayed micro-batch finds it there); a dead letter is rewritten with the same content. Writes
happen on the executors, one client per partition, so the sink scales with the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from confluent_kafka import KafkaError, Producer
from pymongo import MongoClient, UpdateOne
from pymongo.collection import Collection
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from shopstream.streaming import rollups
from shopstream.streaming.rollups import Deltas

__all__ = [
    "DeadLetterSink",
    "OrdersWritten",
    "dead_letter_document",
    "order_document",
    "write_orders",
]

_BATCH = 500


def _money(value: Decimal | None) -> float | None:
    # Python's Decimal is not BSON-encodable (Decimal128 on FerretDB v1 is untested);
    # amounts in cents survive a round trip through a double.
    return None if value is None else round(float(value), 2)


def _utc(value: datetime | None) -> datetime | None:
    # Spark hands back naive datetimes in the session timezone, which is UTC.
    return None if value is None else value.replace(tzinfo=UTC)


def order_document(
    row: Row, processed_at: datetime, query_id: str, batch_id: int
) -> dict[str, Any]:
    """The MongoDB document of one enriched order row (see README for the layout)."""
    kafka = row["kafka"]
    return {
        "_id": row["order_id"],
        "order_id": row["order_id"],
        "created_at": _utc(row["created_at"]),
        "day": row["created_at"].strftime("%Y-%m-%d"),
        "customer": row["customer"].asDict(),
        "items": [
            {
                **item.asDict(),
                "unit_price": _money(item["unit_price"]),
                "line_total": _money(item["line_total"]),
            }
            for item in row["items"]
        ],
        "item_count": row["item_count"],
        "units": row["units"],
        "order_total": _money(row["order_total"]),
        "ingest": {
            "topic": kafka["topic"],
            "partition": kafka["partition"],
            "offset": kafka["offset"],
            "kafka_timestamp": _utc(kafka["kafka_timestamp"]),
            "processed_at": processed_at,
            "query_id": query_id,
            "batch_id": batch_id,
        },
    }


def dead_letter_document(row: Row, processed_at: datetime) -> dict[str, Any]:
    coords = f"{row['topic']}:{row['partition']}:{row['offset']}"
    return {
        "_id": coords,
        "reason": row["reason"],
        "detail": row["detail"],
        "payload": bytes(row["value"]).decode("utf-8", errors="replace"),
        "kafka": {
            "topic": row["topic"],
            "partition": row["partition"],
            "offset": row["offset"],
            "kafka_timestamp": _utc(row["kafka_timestamp"]),
        },
        "failed_at": processed_at,
    }


@dataclass
class OrdersWritten:
    """What one micro-batch's order write did: counts and the rollup deltas of its new orders."""

    seen: int = 0
    new: int = 0
    deltas: Deltas = field(default_factory=dict)


def _first_writes(
    coll: Collection[dict[str, Any]], docs: list[dict[str, Any]], batch: str
) -> list[dict[str, Any]]:
    """Inserts the documents whose `_id` is new and returns the ones this batch owns.

    `$setOnInsert`: the first record of an `_id` wins; a later duplicate changes nothing. The
    upserted ones are this batch's. One that already existed is read back: it is this batch's
    too if an earlier attempt of this batch inserted it (a replay after a crash, a retried or
    speculative task), which its `ingest` (orders) or `first_batch` (markers) tells.
    """
    inserted: set[str] = set()
    for start in range(0, len(docs), _BATCH):
        chunk = docs[start : start + _BATCH]
        ops = [
            UpdateOne({"_id": d["_id"]}, {"$setOnInsert": _without_id(d)}, upsert=True)
            for d in chunk
        ]
        inserted.update((coll.bulk_write(ops, ordered=False).upserted_ids or {}).values())
    owned = [d for d in docs if d["_id"] in inserted]
    for d in docs:
        if d["_id"] not in inserted:  # usually a resend: a point lookup each
            stored = coll.find_one({"_id": d["_id"]})
            if stored is not None and _owner(stored) == batch:
                owned.append(stored)
    return owned


def _without_id(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_id"}


def _owner(doc: dict[str, Any]) -> str:
    return rollups.order_batch(doc) if "ingest" in doc else str(doc["first_batch"])


def write_orders(
    orders: DataFrame,
    url: str,
    database: str,
    query_id: str,
    batch_id: int,
) -> OrdersWritten:
    """Inserts each order once (first record wins) and returns the rollup deltas.

    Runs on the executors, partitioned by customer so that each `day|customer` marker (the
    distinct-customer count) has a single writer.
    """
    processed_at = datetime.now(UTC)
    batch = rollups.batch_token(query_id, batch_id)

    def partition(rows: Iterable[Row]) -> Iterator[OrdersWritten]:
        docs = [order_document(r, processed_at, query_id, batch_id) for r in rows]
        if not docs:
            return
        client: MongoClient[dict[str, Any]] = MongoClient(url, tz_aware=True)
        try:
            db = client[database]
            new = _first_writes(db["orders"], docs, batch)
            deltas = rollups.order_deltas(new)
            markers = {rollups.customer_day_key(o): o for o in new}
            marker_docs = [rollups.marker_document(k, o, batch) for k, o in markers.items()]
            new_markers = _first_writes(db[rollups.CUSTOMER_DAYS], marker_docs, batch)
            rollups.add_customers(deltas, (m["_id"] for m in new_markers))
        finally:
            client.close()
        yield OrdersWritten(len(docs), len(new), deltas)

    parts = orders.repartition(F.col("customer.id")).rdd.mapPartitions(partition).collect()
    return OrdersWritten(
        seen=sum(p.seen for p in parts),
        new=sum(p.new for p in parts),
        deltas=rollups.merge(p.deltas for p in parts),
    )


@dataclass(frozen=True)
class DeadLetterSink:
    """Where dead letters go: the `dead_letters` collection (the system of record that
    `shopstream dlq` lists and replays) and, for other consumers, the Kafka DLQ topic."""

    url: str
    database: str
    kafka_servers: str
    topic: str
    collection: str = "dead_letters"

    def write(self, dead: DataFrame) -> None:
        processed_at = datetime.now(UTC)
        sink = self

        def partition(rows: Iterable[Row]) -> None:
            docs = [dead_letter_document(r, processed_at) for r in rows]
            if docs:
                sink._to_mongo(docs)
                sink._to_kafka(docs)

        dead.foreachPartition(partition)

    def _to_mongo(self, docs: list[dict[str, Any]]) -> None:
        # `$setOnInsert`: a replayed batch leaves the document (and a `replayed_at` mark) as is.
        client: MongoClient[dict[str, Any]] = MongoClient(self.url)
        try:
            coll = client[self.database][self.collection]
            for start in range(0, len(docs), _BATCH):
                ops = [
                    UpdateOne({"_id": d["_id"]}, {"$setOnInsert": _without_id(d)}, upsert=True)
                    for d in docs[start : start + _BATCH]
                ]
                coll.bulk_write(ops, ordered=False)
        finally:
            client.close()

    def _to_kafka(self, docs: list[dict[str, Any]]) -> None:
        # At least once, keyed by the source coordinates: a replayed batch may publish a record
        # again under the same key (consumers dedupe by key; the topic may be compacted).
        producer = Producer(
            {"bootstrap.servers": self.kafka_servers, "acks": "all", "enable.idempotence": True}
        )
        failed: list[str] = []

        def delivered(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                failed.append(str(err))

        for doc in docs:
            producer.produce(
                self.topic,
                json.dumps(doc, default=_json_default).encode(),
                doc["_id"].encode(),
                on_delivery=delivered,
            )
            producer.poll(0)
        if producer.flush(30) or failed:
            raise RuntimeError(f"dead letters not acknowledged by Kafka ({self.topic}): {failed}")


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
