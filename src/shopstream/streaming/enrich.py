"""Parsing and enrichment, as pure functions of DataFrames (read -> transform -> write).

Every input record leaves as exactly one of: an enriched order row, or a dead-letter row
with a typed reason. Nothing is dropped silently.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from shopstream.streaming.reasons import (
    MALFORMED_JSON,
    SCHEMA_VIOLATION,
    UNKNOWN_CUSTOMER,
    UNKNOWN_PRODUCT,
)

__all__ = [
    "EVENT_SCHEMA",
    "MALFORMED_JSON",
    "SCHEMA_VIOLATION",
    "UNKNOWN_CUSTOMER",
    "UNKNOWN_PRODUCT",
    "enrich",
    "parse_events",
]


_ITEM = T.StructType(
    [
        T.StructField("product_id", T.LongType()),
        T.StructField("quantity", T.LongType()),
    ]
)
# Mirrors shopstream.domain.OrderEvent (schemas/order_event.v1.json).
EVENT_SCHEMA = T.StructType(
    [
        T.StructField("schema_version", T.IntegerType()),
        T.StructField("order_id", T.StringType()),
        T.StructField("customer_id", T.LongType()),
        T.StructField("created_at", T.StringType()),
        T.StructField("received_at", T.StringType()),
        T.StructField("items", T.ArrayType(_ITEM)),
    ]
)
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_COORDS = ("topic", "partition", "offset", "kafka_timestamp")


def _violations(e: Column) -> Column:
    """Names of the checks an event fails (empty when it is valid)."""
    item_ok = lambda i: (  # noqa: E731 - a column lambda for F.forall
        i["product_id"].isNotNull() & (i["product_id"] >= 1) & i["quantity"].between(1, 1000)
    )
    checks = {
        "schema_version": e["schema_version"] == 1,
        "order_id": e["order_id"].rlike(_UUID),
        "customer_id": e["customer_id"] >= 1,
        "created_at": F.to_timestamp(e["created_at"]).isNotNull(),
        "items": F.size(e["items"]).between(1, 100) & F.forall(e["items"], item_ok),
    }
    failed = [F.when(~F.coalesce(ok, F.lit(False)), F.lit(name)) for name, ok in checks.items()]
    return F.array_compact(F.array(*failed))


def parse_events(raw: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Kafka rows -> (valid events with coordinates, dead letters).

    Dead letters carry the raw value, `reason` and `detail`. Duplicates of an `order_id` within
    the input are collapsed to the first record (lowest partition and offset): the first
    record of an order is the order, resends change nothing (as across micro-batches).
    """
    text = F.col("value").cast("string")
    parsed = raw.select(
        F.col("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.expr("try_parse_json(CAST(value AS STRING))").isNotNull().alias("_json_ok"),
        F.from_json(text, EVENT_SCHEMA).alias("e"),
    ).withColumn("_failed", _violations(F.col("e")))
    dead = parsed.where(~F.col("_json_ok") | (F.size("_failed") > 0)).select(
        "value",
        *_COORDS,
        F.when(F.col("_json_ok"), F.lit(SCHEMA_VIOLATION))
        .otherwise(F.lit(MALFORMED_JSON))
        .alias("reason"),
        F.when(F.col("_json_ok"), F.concat(F.lit("invalid: "), F.concat_ws(", ", "_failed")))
        .otherwise(F.lit("value is not JSON"))
        .alias("detail"),
    )
    events = parsed.where(F.col("_json_ok") & (F.size("_failed") == 0)).select(
        "value",
        *_COORDS,
        F.col("e.order_id").alias("order_id"),
        F.col("e.customer_id").alias("customer_id"),
        F.to_timestamp("e.created_at").alias("created_at"),
        F.col("e.items").alias("items"),
    )
    first = F.min(F.struct("partition", "offset")).over(Window.partitionBy("order_id"))
    events = (
        events.withColumn("_first", first)
        .where(F.struct("partition", "offset") == F.col("_first"))
        .drop("_first")
    )
    return events, dead


def enrich(
    events: DataFrame, customers: DataFrame, products: DataFrame
) -> tuple[DataFrame, DataFrame]:
    """Events joined with their customer and products -> (orders, dead letters).

    `customers`: id, name, segment, city, country. `products`: id, name, category, price.
    An order with an unknown customer or any unknown product becomes one dead letter.
    """
    lines = (
        events.select("order_id", F.posexplode("items").alias("pos", "item"))
        .select(
            "order_id",
            "pos",
            F.col("item.product_id").alias("product_id"),
            F.col("item.quantity").alias("quantity"),
        )
        .join(F.broadcast(products.withColumnRenamed("id", "product_id")), "product_id", "left")
    )
    priced = lines.select(
        "order_id",
        "pos",
        "product_id",
        "quantity",
        F.col("name"),
        F.col("category"),
        F.col("price").cast("decimal(12,2)").alias("unit_price"),
        (F.col("price").cast("decimal(12,2)") * F.col("quantity"))
        .cast("decimal(14,2)")
        .alias("line_total"),
    )
    per_order = priced.groupBy("order_id").agg(
        F.array_sort(
            F.collect_list(
                F.struct(
                    "pos", "product_id", "name", "category", "unit_price", "quantity", "line_total"
                )
            )
        ).alias("_lines"),
        F.sort_array(F.collect_set(F.when(F.col("name").isNull(), F.col("product_id")))).alias(
            "_unknown_products"
        ),
        F.sum("line_total").cast("decimal(16,2)").alias("order_total"),
        F.sum("quantity").alias("units"),
    )
    cust = customers.select(
        F.col("id").alias("customer_id"),
        F.struct(F.col("id"), "name", "segment", "city", "country").alias("customer"),
    )
    joined = events.join(per_order, "order_id").join(F.broadcast(cust), "customer_id", "left")
    unknown_customer = F.col("customer").isNull()
    unknown_product = F.size("_unknown_products") > 0
    dead = joined.where(unknown_customer | unknown_product).select(
        "value",
        *_COORDS,
        F.when(unknown_customer, F.lit(UNKNOWN_CUSTOMER))
        .otherwise(F.lit(UNKNOWN_PRODUCT))
        .alias("reason"),
        F.when(unknown_customer, F.concat(F.lit("customer "), F.col("customer_id").cast("string")))
        .otherwise(F.concat(F.lit("products "), F.concat_ws(", ", "_unknown_products")))
        .alias("detail"),
    )
    orders = joined.where(~unknown_customer & ~unknown_product).select(
        "order_id",
        "created_at",
        "customer",
        F.transform("_lines", lambda x: x.dropFields("pos")).alias("items"),
        F.size("_lines").alias("item_count"),
        "units",
        "order_total",
        F.struct(*_COORDS).alias("kafka"),
    )
    return orders, dead
