"""Lake landing with real Kafka and Spark: every record once, committed files only."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from shopstream.config import Settings
from shopstream.streaming.committed import committed_files, lake_files, read_watermark
from shopstream.streaming.compaction import compact_at_risk, compact_day, vacuum
from shopstream.streaming.job import restart_lake_query
from shopstream.streaming.lake import WatermarkPublisher, log_retention, start_lake_query
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


def test_with_a_log_retention_old_files_leave_the_log_and_readers_still_see_every_order(
    spark: SparkSession, stack: Settings, api: httpx.Client, tmp_path: Path
) -> None:
    """The file sink's `retention` (decision 49) on real Spark: once a compacted day's files
    are older than it, the sink's next log compaction drops them; the manifest still gives
    every non-Spark reader the whole day, and `vacuum` then deletes the raw files."""
    settings = job_settings(
        stack, tmp_path, lake_log_retention_hours=1 / 3600, lake_max_offsets_per_trigger=10**7
    )
    table = f"{settings.lake}/orders"
    day = "2026-09-14"
    first = [new_order(f"{day}T10:00:00Z") for _ in range(6)]
    assert api.post("/orders", json={"orders": first}).status_code == 202
    interval = "spark.sql.streaming.fileSink.log.compactInterval"
    spark.conf.set(interval, "2")  # a log compaction every 2nd batch (10 by default)
    try:
        land(spark, settings)  # batch 0
        old = committed_files(table, day)
        assert old
        assert compact_day(settings, date.fromisoformat(day)).rows >= len(first)
        time.sleep(1.5)  # batch 0's files are now older than the retention
        done, failed = compact_at_risk(settings)  # the shared topic's other days, as a build does
        assert failed == []
        assert all(c.version for c in done)  # each published a manifest
        assert log_retention(settings) == "1000ms"  # nothing old lacks a manifest
        late = [new_order(f"{day}T11:00:00Z") for _ in range(3)]
        assert api.post("/orders", json={"orders": late}).status_code == 202
        land(spark, settings)  # batch 1: the log's compaction, with the retention
    finally:
        spark.conf.unset(interval)
    assert (Path(settings.lake.removeprefix("file:")) / "orders/_spark_metadata/1.compact").exists()
    now = committed_files(table, day)
    assert not set(old) & set(now)  # dropped from Spark's log: a Spark reader misses them
    ids = {o["order_id"] for o in first + late}

    def landed() -> list[object]:
        files = [p.removeprefix("file:") for p in lake_files(table, day)]
        found = pq.ParquetDataset(files).read(columns=["order_id"]).column("order_id")
        return sorted(i for i in found.to_pylist() if i in ids)

    assert landed() == sorted(ids)  # the manifest's files and the late batch: each once
    result = vacuum(settings, now=datetime.now(UTC) + timedelta(hours=1))
    assert day in result.raw_days
    assert not any(Path(p.removeprefix("file:")).exists() for p in old)
    assert landed() == sorted(ids)


def test_a_landing_query_restarted_for_its_retention_lands_every_order_once(
    spark: SparkSession, stack: Settings, api: httpx.Client, tmp_path: Path
) -> None:
    """The running job restarts its landing query when the guard's answer changes
    (`restart_lake_query`): stopped mid-stream and started again on the same checkpoint,
    every order is in the lake once."""
    settings = job_settings(stack, tmp_path, lake_trigger_s=1.0)
    table = f"{settings.lake}/orders"
    first = [new_order("2026-09-20T10:00:00Z") for _ in range(20)]
    late = [new_order("2026-09-20T11:00:00Z") for _ in range(20)]
    ids = {str(o["order_id"]) for o in first + late}

    def landed() -> list[object]:
        return sorted(r["order_id"] for r in committed_rows(table) if r["order_id"] in ids)

    query = start_lake_query(spark, settings, retention="604800000ms")
    try:
        assert api.post("/orders", json={"orders": first}).status_code == 202
        deadline = time.monotonic() + 120
        while len(landed()) < len(first) and time.monotonic() < deadline:
            time.sleep(1)
        assert api.post("/orders", json={"orders": late}).status_code == 202
        query = restart_lake_query(spark, settings, query, None)  # while those may be landing
        deadline = time.monotonic() + 120
        while len(landed()) < len(ids) and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(3)  # a few more batches: nothing may land twice
        assert query.exception() is None
    finally:
        query.stop()
    assert landed() == sorted(ids)
