"""Lake landing with real Kafka and Spark: every record once, committed files only."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from shopstream.config import Settings
from shopstream.streaming.committed import committed_files
from shopstream.streaming.lake import start_lake_query
from shopstream.streaming.source import read_orders

pytestmark = pytest.mark.integration


def land(spark: SparkSession, settings: Settings) -> None:
    query = start_lake_query(read_orders(spark, settings), settings, available_now=True)
    query.awaitTermination(180)
    assert query.exception() is None


def committed_rows(table: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for uri in committed_files(table):
        day = uri.split("/dt=")[1].split("/")[0]  # Hive-style partition in the path
        rows += [{**r, "dt": day} for r in pq.read_table(uri.removeprefix("file:")).to_pylist()]
    return rows


def test_posted_orders_land_once_and_a_rerun_adds_nothing(
    spark: SparkSession, stack: Settings, api: httpx.Client, tmp_path: Path
) -> None:
    settings = stack.model_copy(
        update={
            "lake_uri": (tmp_path / "lake").as_uri(),
            "checkpoint_uri": (tmp_path / "ckpt").as_uri(),
        }
    )
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
