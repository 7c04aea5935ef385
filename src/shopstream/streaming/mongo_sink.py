"""Writes enriched orders and dead letters to MongoDB, idempotently.

Documents are keyed by `_id`: an order by its `order_id`, a dead letter by its Kafka
coordinates. A replayed micro-batch rewrites the same documents; it never adds any. Writes
happen on the executors, one client per partition, so the sink scales with the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pymongo import MongoClient, ReplaceOne
from pyspark.sql import DataFrame, Row

__all__ = ["dead_letter_document", "order_document", "write_dead_letters", "write_orders"]

_BATCH = 500


def _money(value: Decimal | None) -> float | None:
    # Python's Decimal is not BSON-encodable (Decimal128 on FerretDB v1 is untested);
    # amounts in cents survive a round trip through a double.
    return None if value is None else round(float(value), 2)


def _utc(value: datetime | None) -> datetime | None:
    # Spark hands back naive datetimes in the session timezone, which is UTC.
    return None if value is None else value.replace(tzinfo=UTC)


def order_document(row: Row, processed_at: datetime) -> dict[str, Any]:
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


def _upsert_all(url: str, database: str, collection: str, docs: Iterable[dict[str, Any]]) -> int:
    client: MongoClient[dict[str, Any]] = MongoClient(url)
    written = 0
    try:
        coll = client[database][collection]
        batch: list[ReplaceOne[dict[str, Any]]] = []
        for doc in docs:
            batch.append(ReplaceOne({"_id": doc["_id"]}, doc, upsert=True))
            if len(batch) >= _BATCH:
                coll.bulk_write(batch, ordered=False)
                written += len(batch)
                batch = []
        if batch:
            coll.bulk_write(batch, ordered=False)
            written += len(batch)
    finally:
        client.close()
    return written


def write_orders(orders: DataFrame, url: str, database: str, collection: str = "orders") -> None:
    processed_at = datetime.now(UTC)

    def partition(rows: Iterable[Row]) -> None:
        _upsert_all(url, database, collection, (order_document(r, processed_at) for r in rows))

    orders.foreachPartition(partition)


def write_dead_letters(
    dead: DataFrame, url: str, database: str, collection: str = "dead_letters"
) -> None:
    processed_at = datetime.now(UTC)

    def partition(rows: Iterable[Row]) -> None:
        _upsert_all(
            url, database, collection, (dead_letter_document(r, processed_at) for r in rows)
        )

    dead.foreachPartition(partition)
