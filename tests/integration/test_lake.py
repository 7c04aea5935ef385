"""Lake landing with real Kafka and Spark: every record once, committed files only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from shopstream.config import Settings
from shopstream.streaming.committed import committed_files, read_watermark
from shopstream.streaming.lake import WatermarkPublisher, start_lake_query
from shopstream.streaming.progress import ProgressPoller
from tests.integration.conftest import job_settings

pytestmark = pytest.mark.integration


def land(spark: SparkSession, settings: Settings) -> StreamingQuery:
    query = start_lake_query(spark, settings, available_now=True)
    query.awaitTermination(180)
    assert query.exception() is None
    return query


def committed_rows(table: str) -> list[dict[str, object]]:
    """Every committed row. Spark writes timestamps as INT96, which pyarrow would read in
    nanoseconds: an order of year 1 (the API's contract test sends such orders to the shared
    topic) would overflow into 2257. Microseconds hold years 1-9999, as Spark does."""
    rows: list[dict[str, object]] = []
    for uri in committed_files(table):
        day = uri.split("/dt=")[1].split("/")[0]  # Hive-style partition in the path
        found = pq.read_table(uri.removeprefix("file:"), coerce_int96_timestamp_unit="us")
        rows += [{**r, "dt": day} for r in found.to_pylist()]
    return rows


def new_order(created_at: str) -> dict[str, object]:
    return {
        "order_id": str(uuid.uuid4()),
        "customer_id": 5,
        "created_at": created_at,
        "items": [{"product_id": 3, "quantity": 1}],
    }


def test_posted_orders_land_once_and_a_rerun_adds_nothing(
    spark: SparkSession, stack: Settings, api: httpx.Client, tmp_path: Path
) -> None:
    settings = job_settings(stack, tmp_path)
    ids = [str(uuid.uuid4()) for _ in range(40)]
    orders = [
        {
            "order_id": oid,
            "customer_id": 3,
            "created_at": "2026-11-20T08:00:00+00:00",
            "items": [{"product_id": 4, "quantity": 1}],
        }
        for oid in ids
    ]
    assert api.post("/orders", json={"orders": orders}).status_code == 202

    land(spark, settings)
    table = f"{settings.lake}/orders"
    first = committed_rows(table)
    ours = [r for r in first if r["order_id"] in set(ids)]
    assert sorted(r["order_id"] for r in ours) == sorted(ids)  # each exactly once
    assert {r["dt"] for r in ours} == {"2026-11-20"}
    assert all(r["value"].startswith(b'{"schema_version":1') for r in ours)  # type: ignore[union-attr]
    day = committed_files(table, day="2026-11-20")
    assert day
    assert all("/dt=2026-11-20/" in p for p in day)

    land(spark, settings)  # same checkpoint: nothing new to land
    assert len(committed_rows(table)) == len(first)


def test_the_watermark_is_published_and_late_orders_still_land(
    spark: SparkSession, stack: Settings, api: httpx.Client, tmp_path: Path
) -> None:
    settings = job_settings(stack, tmp_path)
    table = f"{settings.lake}/orders"
    poller = ProgressPoller([WatermarkPublisher(table, settings)])  # as the job's run loop does
    assert api.post("/order", json=new_order("2026-10-27T15:00:00Z")).status_code == 202
    poller.poll([land(spark, settings)])
    newest = max(r["created_at"] for r in committed_rows(table) if r["created_at"])

    # A second run: its batch carries the watermark the first run's data set.
    late = new_order("2026-10-01T08:00:00Z")  # far older than the watermark
    assert api.post("/order", json=late).status_code == 202
    assert poller.poll([land(spark, settings)]) == 1
    published = read_watermark(table)
    assert published is not None
    mark = datetime.fromisoformat(published["watermark"])
    newest_ms = newest.replace(microsecond=newest.microsecond // 1000 * 1000, tzinfo=UTC)  # type: ignore[attr-defined]
    assert mark == newest_ms - timedelta(minutes=10)  # Spark keeps event time in milliseconds
    assert published["complete_through"] == str(mark.date() - timedelta(days=1))
    landed = [r for r in committed_rows(table) if r["order_id"] == late["order_id"]]
    assert [r["dt"] for r in landed] == ["2026-10-01"]  # a watermark drops nothing here
