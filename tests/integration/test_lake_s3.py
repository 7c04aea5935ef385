"""The lake on S3, with moto's server as the fake S3: `shopstream stream --once` into
`s3://bucket/prefix`, checkpoints on S3 too, read back through the committed-files reader.

The job runs as a subprocess because the session's shared SparkSession has no s3a jars;
the first run fetches them (~690 MB, once per cache).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from shopstream.config import Settings, settings_env
from shopstream.stack.sandbox import HOST, free_ports
from shopstream.store.ferretdb import open_store
from shopstream.streaming.committed import (
    committed_files,
    filesystem_for,
    lake_files,
    read_manifest,
    s3_filesystem,
)
from shopstream.streaming.compaction import compact_day

pytestmark = pytest.mark.integration

DAY = "2024-02-29"  # no other test posts orders of this day


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request
    (port,) = free_ports(1)
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_settings(stack: Settings, s3_endpoint: str, tmp_path: Path) -> Iterator[Settings]:
    """The session stack's servers, a lake and checkpoints in a new bucket, own Mongo db."""
    tag = uuid.uuid4().hex[:8]
    settings = stack.model_copy(
        update={
            "data_dir": tmp_path / "data",  # the job's ready file, away from the stack's
            "spark_master": "local[2]",
            "mongo_database": f"s3lake_{tag}",  # the enrichment query replays the whole topic
            "lake_uri": f"s3://lake-{tag}/shop/lake",
            "checkpoint_uri": f"s3a://lake-{tag}/shop/checkpoints",
            "s3_endpoint": s3_endpoint,
            "s3_access_key_id": "test",
            "s3_secret_access_key": SecretStr("test"),
            "s3_path_style": True,
        }
    )
    admin = pafs.S3FileSystem(
        endpoint_override=s3_endpoint.removeprefix("http://"),
        scheme="http",
        access_key="test",
        secret_key="test",
        allow_bucket_creation=True,
    )
    admin.create_dir(f"lake-{tag}")
    yield settings
    store = open_store(settings, app="shopstream-test")
    store.drop()
    store.close()


def stream_once(settings: Settings) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shopstream", "stream", "--once"],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def order_ids(files: list[str], settings: Settings) -> list[str]:
    ids: list[str] = []
    for uri in files:
        fs, path = filesystem_for(uri, settings)
        ids += pq.read_table(path, filesystem=fs, columns=["order_id"]).column(0).to_pylist()
    return ids


@pytest.mark.timeout(1200)
def test_orders_land_once_in_an_s3_lake_and_a_rerun_adds_nothing(
    s3_settings: Settings, api: httpx.Client
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(25)]
    orders = [
        {
            "order_id": oid,
            "customer_id": 7,
            "created_at": f"{DAY}T10:00:00Z",
            "items": [{"product_id": 3, "quantity": 2}],
        }
        for oid in ids
    ]
    assert api.post("/orders", json={"orders": orders}).status_code == 202

    stream_once(s3_settings)
    table = f"{s3_settings.lake}/orders"
    assert table.startswith("s3a://lake-")
    day_files = committed_files(table, day=DAY, settings=s3_settings)
    assert day_files
    assert all(f.startswith(f"{table}/dt={DAY}/") for f in day_files)
    assert sorted(order_ids(day_files, s3_settings)) == sorted(ids)  # each exactly once
    # The checkpoints really are on S3 (nothing fell back to a local folder).
    bucket_and_prefix = s3_settings.checkpoints.removeprefix("s3a://")
    lake_commits = pafs.FileSelector(f"{bucket_and_prefix}/lake/commits")
    assert s3_filesystem(s3_settings).get_file_info(lake_commits)

    everything = committed_files(table, settings=s3_settings)
    stream_once(s3_settings)  # same checkpoints: nothing new to land
    assert committed_files(table, settings=s3_settings) == everything
    assert sorted(order_ids(committed_files(table, DAY, s3_settings), s3_settings)) == sorted(ids)

    # the day compacted on S3: one file, published by a single PUT of its manifest
    done = compact_day(s3_settings, date.fromisoformat(DAY))
    assert (done.files_in, done.files_out, done.rows) == (len(day_files), 1, 25)
    compacted = lake_files(table, DAY, s3_settings)
    assert compacted == [f for f in compacted if f.startswith(f"{table}/_compacted/dt={DAY}/")]
    assert len(compacted) == 1
    assert sorted(order_ids(compacted, s3_settings)) == sorted(ids)
    assert read_manifest(table, DAY, s3_settings) is not None
    assert committed_files(table, day=DAY, settings=s3_settings) == day_files  # Spark's view
