"""The MongoDB collections shopstream writes: their names and `_id` formats, in one place.

Every reader and writer (the streaming job, `shopstream dlq`, `shopstream rollups`, the demo
panel, the dashboard, the benchmarks) takes names and keys from here. Keys are strings:
FerretDB v1 answers an exact string `_id` lookup from its index and scans for anything else
(docs/ferretdb.md), so every read path is designed as point lookups on these keys. The
documents' shapes and invariants are in docs/streaming.md.
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "CUSTOMER_DAYS",
    "DEAD_LETTERS",
    "ORDERS",
    "PRODUCT_SHARDS",
    "ROLLUP_DAY",
    "ROLLUP_DAY_PRODUCT",
    "ROLLUP_MINUTE",
    "STREAM_BATCHES",
    "batch_key",
    "batch_range",
    "batch_token",
    "customer_day_key",
    "day_products_key",
    "day_products_keys",
    "dead_letter_key",
    "minute_key",
]

ORDERS = "orders"  # _id: the order id
DEAD_LETTERS = "dead_letters"  # _id: dead_letter_key
ROLLUP_MINUTE = "rollup_minute"  # _id: minute_key; with the minute's categories
ROLLUP_DAY = "rollup_day"  # _id: the UTC day, "2026-11-28"
ROLLUP_DAY_PRODUCT = "rollup_day_product"  # _id: day_products_key (a shard of a day's products)
CUSTOMER_DAYS = "rollup_customer_day"  # _id: customer_day_key (distinct customers per day)
STREAM_BATCHES = "stream_batches"  # _id: batch_key (the streaming job's ledger)

# A day's products are spread over this many `rollup_day_product` documents (by product id),
# so a micro-batch rewrites at most this many per day however many products it sold, and a
# reader gets a day's products in as many point lookups. Changing it needs `rollups rebuild`.
PRODUCT_SHARDS = 64


def minute_key(minute: datetime) -> str:
    """`2026-11-28T14:05Z` (a UTC minute)."""
    return minute.strftime("%Y-%m-%dT%H:%MZ")


def day_products_key(day: str, product_id: int) -> str:
    """`2026-11-28|07`: the `rollup_day_product` document holding this product's day."""
    return f"{day}|{product_id % PRODUCT_SHARDS:02d}"


def day_products_keys(day: str) -> list[str]:
    """Every `rollup_day_product` document of a day (read them all for its top products)."""
    return [f"{day}|{shard:02d}" for shard in range(PRODUCT_SHARDS)]


def customer_day_key(day: str, customer_id: int) -> str:
    return f"{day}|{customer_id}"


def dead_letter_key(topic: str, partition: int, offset: int) -> str:
    """A dead letter is keyed by where its record sits in Kafka."""
    return f"{topic}:{partition}:{offset}"


def batch_token(query_id: str, batch_id: int) -> str:
    """Names a micro-batch across restarts: the query id lives in the checkpoint, so a job
    started on a fresh checkpoint is a new query whose batch numbers start again at 0."""
    return f"{query_id}:{batch_id}"


def batch_key(query_id: str, batch_id: int) -> str:
    """The ledger's `_id` of a micro-batch (zero-padded, so keys sort by batch)."""
    return f"{query_id}:{batch_id:012d}"


def batch_range(query_id: str) -> dict[str, str]:
    """An `_id` filter for every ledger entry of one query (a scan on FerretDB)."""
    return {"$gte": f"{query_id}:", "$lt": f"{query_id};"}
