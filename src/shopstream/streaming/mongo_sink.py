"""Writes enriched orders and dead letters to MongoDB, idempotently.

Documents are keyed by `_id`: an order by its `order_id`, a dead letter by its Kafka
coordinates. Both are inserted by their first record and never rewritten (a resend or a
replayed micro-batch finds them there). Writes happen on the executors, so the sink scales
with the cluster.
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

__all__ = ["BatchSink", "BatchWritten", "dead_letter_document", "order_document"]

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


def _first_writes(
    coll: Collection[dict[str, Any]], docs: list[dict[str, Any]], batch: str
) -> list[dict[str, Any]]:
    """Inserts the documents whose `_id` is new and returns the ones this batch owns.

    `$setOnInsert`: the first record of an `_id` wins; a later duplicate changes nothing. The
    upserted ones are this batch's. One that already existed is read back: it is this batch's
    too if an earlier attempt of this batch inserted it (a replay after a crash, a retried or
    speculative task), which its `ingest` (orders) or `first_batch` (markers) tells.
    """
    inserted = _insert_new(coll, docs)
    owned = [d for d in docs if d["_id"] in inserted]
    for d in docs:
        if d["_id"] not in inserted:  # usually a resend: a point lookup each
            stored = coll.find_one({"_id": d["_id"]})
            if stored is not None and _owner(stored) == batch:
                owned.append(stored)
    return owned


def _insert_new(coll: Collection[dict[str, Any]], docs: list[dict[str, Any]]) -> set[str]:
    """Upserts with `$setOnInsert` (existing documents are left as they are); returns the
    `_id`s that were inserted."""
    inserted: set[str] = set()
    for start in range(0, len(docs), _BATCH):
        ops = [
            UpdateOne({"_id": d["_id"]}, {"$setOnInsert": _without_id(d)}, upsert=True)
            for d in docs[start : start + _BATCH]
        ]
        inserted.update((coll.bulk_write(ops, ordered=False).upserted_ids or {}).values())
    return inserted


def _without_id(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_id"}


def _owner(doc: dict[str, Any]) -> str:
    return rollups.order_batch(doc) if "ingest" in doc else str(doc.get("first_batch", ""))


@dataclass
class BatchWritten:
    """What one micro-batch's write did: counts, and the rollup deltas of its new orders."""

    seen: int = 0  # order rows written (after in-batch duplicates are collapsed)
    new: int = 0  # orders this batch inserted (the others already existed)
    dead: int = 0  # dead letters
    deltas: Deltas = field(default_factory=dict)


# Executors reuse their Python workers across tasks (spark.python.worker.reuse), so clients
# are kept per process instead of reconnecting for every partition of every micro-batch.
_MONGO: dict[str, MongoClient[dict[str, Any]]] = {}
_KAFKA: dict[str, Producer] = {}


def _mongo(url: str) -> MongoClient[dict[str, Any]]:
    if url not in _MONGO:
        _MONGO[url] = MongoClient(url, tz_aware=True)
    return _MONGO[url]


def _kafka(servers: str) -> Producer:
    if servers not in _KAFKA:
        _KAFKA[servers] = Producer(
            {"bootstrap.servers": servers, "acks": "all", "enable.idempotence": True}
        )
    return _KAFKA[servers]


@dataclass(frozen=True)
class BatchSink:
    """Writes a micro-batch's orders and dead letters in one Spark job, on the executors.

    Orders: inserted once (first record wins), partitioned by customer so that each
    `day|customer` marker (the distinct-customer count) has a single writer; each partition
    returns the rollup deltas of the orders it inserted. Dead letters: the `dead_letters`
    collection (the system of record `shopstream dlq` lists and replays) and, for other
    consumers, the Kafka DLQ topic.
    """

    url: str
    database: str
    kafka_servers: str
    dlq_topic: str

    def write(
        self, orders: DataFrame, dead: DataFrame, query_id: str, batch_id: int
    ) -> BatchWritten:
        processed_at = datetime.now(UTC)
        batch = rollups.batch_token(query_id, batch_id)
        sink = self

        def partition(rows: Iterable[tuple[str, Row]]) -> Iterator[BatchWritten]:
            orders: list[Row] = []
            dead: list[Row] = []
            for kind, row in rows:
                (orders if kind == "order" else dead).append(row)
            db = _mongo(sink.url)[sink.database]
            written = BatchWritten(dead=len(dead))
            if orders:
                docs = [order_document(r, processed_at, query_id, batch_id) for r in orders]
                new = _first_writes(db["orders"], docs, batch)
                written.deltas = rollups.order_deltas(new)
                markers = {rollups.customer_day_key(o): o for o in new}
                marker_docs = [rollups.marker_document(k, o, batch) for k, o in markers.items()]
                new_markers = _first_writes(db[rollups.CUSTOMER_DAYS], marker_docs, batch)
                rollups.add_customers(written.deltas, (m["_id"] for m in new_markers))
                written.seen, written.new = len(docs), len(new)
            if dead:
                docs = [dead_letter_document(r, processed_at) for r in dead]
                _insert_new(db["dead_letters"], docs)  # a `replayed_at` mark stays
                sink._publish(docs)
            yield written

        tagged = (
            orders.repartition(F.col("customer.id"))
            .rdd.map(lambda r: ("order", r))
            .union(dead.rdd.map(lambda r: ("dead", r)))
        )
        parts = tagged.mapPartitions(partition).collect()
        return BatchWritten(
            seen=sum(p.seen for p in parts),
            new=sum(p.new for p in parts),
            dead=sum(p.dead for p in parts),
            deltas=rollups.merge(p.deltas for p in parts),
        )

    def _publish(self, docs: list[dict[str, Any]]) -> None:
        # At least once, keyed by the source coordinates: a replayed batch may publish a record
        # again under the same key (consumers dedupe by key; the topic may be compacted).
        producer = _kafka(self.kafka_servers)
        failed: list[str] = []

        def delivered(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                failed.append(str(err))

        for doc in docs:
            producer.produce(
                self.dlq_topic,
                json.dumps(doc, default=_json_default).encode(),
                doc["_id"].encode(),
                on_delivery=delivered,
            )
            producer.poll(0)
        if producer.flush(30) or failed:
            raise RuntimeError(
                f"dead letters not acknowledged by Kafka ({self.dlq_topic}): {failed}"
            )


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
