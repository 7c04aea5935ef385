"""The lake landing transform on a handful of rows."""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from shopstream.streaming.lake import UNPARSED_DAY, lake_rows

KAFKA_SCHEMA = T.StructType(
    [
        T.StructField("key", T.BinaryType()),
        T.StructField("value", T.BinaryType()),
        T.StructField("topic", T.StringType()),
        T.StructField("partition", T.IntegerType()),
        T.StructField("offset", T.LongType()),
        T.StructField("timestamp", T.TimestampType()),
    ]
)
TS = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_records_land_raw_with_coordinates_and_event_date(spark: SparkSession) -> None:
    good = (
        b'{"schema_version":1,"order_id":"o-1","customer_id":7,'
        b'"created_at":"2026-11-27T23:59:59.5Z","received_at":"2026-11-28T00:00:01Z",'
        b'"items":[{"product_id":1,"quantity":2}]}'
    )
    rows = [
        (b"7", good, "orders", 3, 41, TS),
        (None, b"\xff not json", "orders", 1, 9, TS),
        (b"8", b'{"order_id":"o-2"}', "orders", 0, 5, TS),
    ]
    out = {r["offset"]: r for r in lake_rows(spark.createDataFrame(rows, KAFKA_SCHEMA)).collect()}
    landed = out[41]
    assert bytes(landed["value"]) == good  # untransformed
    assert bytes(landed["key"]) == b"7"
    assert (landed["topic"], landed["partition"]) == ("orders", 3)
    assert landed["order_id"] == "o-1"
    assert landed["dt"] == "2026-11-27"  # the order's date in UTC, not the broker's
    assert landed["created_at"] == datetime(2026, 11, 27, 23, 59, 59, 500000)
    assert out[9]["dt"] == UNPARSED_DAY
    assert bytes(out[9]["value"]) == b"\xff not json"
    assert (out[5]["order_id"], out[5]["dt"]) == ("o-2", UNPARSED_DAY)
