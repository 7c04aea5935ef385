"""The MongoDB collections shopstream writes: their names and `_id` formats, in one place.

Every reader and writer (the streaming job, `shopstream dlq`, `shopstream rollups`, the demo
panel, the dashboard, the benchmarks) takes names and keys from here, except the
`rollup_total` layout key (`store.rollup_store`) and the lease `_id`s (`store.leases`). Keys
are strings:
FerretDB v1 answers an exact string `_id` lookup from its index and scans for anything else
(docs/ferretdb.md), so every read path is designed as point lookups on these keys. The
documents' shapes and invariants are in docs/streaming.md.
"""

from __future__ import annotations

from datetime import date, datetime

__all__ = [
    "ALERT_STATUS_KEY",
    "CUSTOMER_DAYS",
    "CUSTOMER_SETS",
    "DAILY_DEMAND",
    "DEAD_LETTERS",
    "DEMAND_HISTORY",
    "DEMAND_SPIKES",
    "EMERGING_SPIKES",
    "ENRICH_STATUS",
    "FIRST_SALES_KEY",
    "LEASES",
    "OLD_CUSTOMER_ORDERS",
    "ORDERS",
    "PRODUCT_SHARDS",
    "ROLLUP_DAY",
    "ROLLUP_DAY_PRODUCT",
    "ROLLUP_HOUR",
    "ROLLUP_MINUTE",
    "ROLLUP_TOTAL",
    "SPIKE_ALERTS",
    "SPIKE_DAYS_KEY",
    "SPIKE_LABELS",
    "SPIKE_LABELS_KEY",
    "STREAM_BATCHES",
    "STREAM_STATUS",
    "TOTAL_KEY",
    "batch_key",
    "batch_range",
    "batch_token",
    "customer_day_key",
    "customer_set_key",
    "day_products_key",
    "day_products_keys",
    "dead_letter_key",
    "history_calendar_key",
    "history_orders_key",
    "history_period",
    "history_shard_key",
    "hour_key",
    "minute_hour_key",
    "minute_key",
    "query_status_key",
]

ORDERS = "orders"  # _id: the order id
DEAD_LETTERS = "dead_letters"  # _id: dead_letter_key
ROLLUP_MINUTE = "rollup_minute"  # _id: minute_key; with the minute's categories
ROLLUP_HOUR = "rollup_hour"  # _id: hour_key; with the hour's categories
# Days are business days (SHOPSTREAM_BUSINESS_TIMEZONE), minutes and hours UTC.
ROLLUP_DAY = "rollup_day"  # _id: the business day, "2026-11-28"
ROLLUP_DAY_PRODUCT = "rollup_day_product"  # _id: day_products_key (a shard of a day's products)
ROLLUP_TOTAL = "rollup_total"  # _id: TOTAL_KEY (all time; dead letters by reason), or "layout"
CUSTOMER_DAYS = "rollup_customer_day"  # _id: customer_day_key (distinct customers per day)
CUSTOMER_SETS = "rollup_customers"  # _id: customer_set_key (who ordered in a bucket: a bitmap)
# Layout 3 kept customers' histories here; they are in PostgreSQL now (store.customer_history).
OLD_CUSTOMER_ORDERS = "customer_orders"
TOTAL_KEY = "all"
STREAM_BATCHES = "stream_batches"  # _id: batch_key (the streaming job's ledger)
STREAM_STATUS = "stream_status"  # _id: query_status_key, or ENRICH_STATUS (the last batch)
ENRICH_STATUS = "enrich"
# Demand spikes (shopstream.spikes; docs/spikes.md)
DAILY_DEMAND = "daily_demand"  # _id: the business day: every product's units, orders, revenue
DEMAND_HISTORY = "demand_history"  # _id: history_shard_key, history_calendar_key, or
#   FIRST_SALES_KEY: the detector's index of daily units by product, a quarter at a time
DEMAND_SPIKES = "demand_spikes"  # _id: the business day (its spikes), or SPIKE_DAYS_KEY
EMERGING_SPIKES = "emerging_spikes"  # _id: the business day (today's provisional spikes)
LEASES = "leases"  # _id: what a lease guards ("demand_history": one spike run at a time)
# _id: the business day (its spike alerts' deliveries, by product id or "store"), or
#   ALERT_STATUS_KEY (the last attempt and delivery, undelivered alerts by day)
SPIKE_ALERTS = "spike_alerts"
ALERT_STATUS_KEY = "status"
FIRST_SALES_KEY = "first_sales"
SPIKE_DAYS_KEY = "days"
# _id: SPIKE_LABELS_KEY: every label users gave a detected spike, by day and product id
SPIKE_LABELS = "spike_labels"
SPIKE_LABELS_KEY = "labels"

# A day's products are spread over this many `rollup_day_product` documents (by product id),
# so a micro-batch rewrites at most this many per day however many products it sold, and a
# reader gets a day's products in as many point lookups. Changing it needs `rollups rebuild`.
PRODUCT_SHARDS = 64


def minute_key(minute: datetime) -> str:
    """`2026-11-28T14:05Z` (a UTC minute)."""
    return minute.strftime("%Y-%m-%dT%H:%MZ")


def hour_key(hour: datetime) -> str:
    """`2026-11-28T14Z` (a UTC hour)."""
    return hour.strftime("%Y-%m-%dT%HZ")


def minute_hour_key(minute_id: str) -> str:
    """`2026-11-28T14Z`: the UTC hour of a minute key `2026-11-28T14:05Z` (by its colon, not
    by position: strftime writes the year 424 as `424`)."""
    return f"{minute_id.rsplit(':', 1)[0]}Z"


def customer_set_key(level: str, bucket: str) -> str:
    """`minute|2026-11-28T14:05Z`, `hour|2026-11-28T14Z`, `day|2026-11-28` or `all`: the
    `rollup_customers` document of a bucket (level is "minute", "hour", "day" or "all")."""
    return TOTAL_KEY if level == TOTAL_KEY else f"{level}|{bucket}"


def day_products_key(day: str, product_id: int) -> str:
    """`2026-11-28|07`: the `rollup_day_product` document holding this product's day."""
    return f"{day}|{product_id % PRODUCT_SHARDS:02d}"


def day_products_keys(day: str) -> list[str]:
    """Every `rollup_day_product` document of a day (read them all for its top products)."""
    return [f"{day}|{shard:02d}" for shard in range(PRODUCT_SHARDS)]


def history_period(day: date) -> str:
    """`2026Q4`: the quarter whose `demand_history` documents hold this day."""
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def history_shard_key(period: str, product_id: int) -> str:
    """`2026Q4|07`: the `demand_history` document with this product's daily units of a
    quarter."""
    return f"{period}|{product_id % PRODUCT_SHARDS:02d}"


def history_orders_key(period: str, shard: int) -> str:
    """`2026Q4|07|orders`: the daily orders (orders with the product) of shard 7's products
    over a quarter, beside their units (read only for the noise test's recent days)."""
    return f"{period}|{shard:02d}|orders"


def history_calendar_key(period: str) -> str:
    """`2026Q4|days`: which days of a quarter the history holds, with the store's totals."""
    return f"{period}|days"


def customer_day_key(day: str, customer_id: int) -> str:
    return f"{day}|{customer_id}"


def dead_letter_key(topic: str, partition: int, offset: int) -> str:
    """A dead letter is keyed by where its record sits in Kafka."""
    return f"{topic}:{partition}:{offset}"


def query_status_key(name: str) -> str:
    """`query:enrich`: the latest progress of a streaming query, by its name."""
    return f"query:{name}"


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
