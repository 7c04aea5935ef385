"""The same job on a real Spark standalone cluster, started with `spark-submit`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pyspark
import pytest

from shopstream.config import Settings, settings_env
from shopstream.stack.sandbox import free_ports
from shopstream.store.ferretdb import open_store
from shopstream.streaming import submit
from shopstream.streaming.committed import committed_files

pytestmark = pytest.mark.integration

SPARK_HOME = Path(pyspark.__file__).parent


def spark_env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_WORKER_DIR": str(tmp / "work"),
        "SPARK_LOG_DIR": str(tmp / "logs"),
        "PYSPARK_PYTHON": sys.executable,
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A standalone master and one worker (2 cores), from pyspark's own scripts: the master
    URL and the worker's directory (one `app-*` folder per application it ran)."""
    tmp = tmp_path_factory.mktemp("spark-cluster")
    port, ui, worker_ui = free_ports(3)
    url = f"spark://127.0.0.1:{port}"
    env = spark_env(tmp)
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    procs = [
        subprocess.Popen(
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(ui),
            ],
            env=env,
            stdout=(tmp / "master.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        _wait_for_log(tmp / "master.log", "I have been elected leader")
        procs.append(
            subprocess.Popen(
                [
                    spark_class,
                    "org.apache.spark.deploy.worker.Worker",
                    url,
                    "--cores",
                    "2",
                    "--memory",
                    "2g",
                    "--webui-port",
                    str(worker_ui),
                ],
                env=env,
                stdout=(tmp / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        _wait_for_log(tmp / "worker.log", "Successfully registered with master")
        yield url, tmp / "work"
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(30)


def _wait_for_log(log: Path, line: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while line not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{log.name}: no {line!r}:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


def test_spark_submit_to_a_standalone_cluster_lands_and_enriches(
    cluster: tuple[str, Path], stack: Settings, api: httpx.Client, tmp_path: Path
) -> None:
    master, worker_dir = cluster
    settings = stack.model_copy(
        update={
            "spark_master": master,
            "mongo_database": f"it_cluster_{uuid.uuid4().hex[:8]}",
            "lake_uri": (tmp_path / "lake").as_uri(),
            "checkpoint_uri": (tmp_path / "ckpt").as_uri(),
        }
    )
    ids = [str(uuid.uuid4()) for _ in range(12)]
    orders = [
        {"order_id": oid, "customer_id": 11, "items": [{"product_id": 8, "quantity": 2}]}
        for oid in ids
    ]
    assert api.post("/orders", json={"orders": orders}).status_code == 202

    env = {**spark_env(tmp_path), **settings_env(settings)}
    jars = subprocess.run(
        [sys.executable, "-m", "shopstream", "stream", "--print-jars"],
        env=env, capture_output=True, text=True, check=True, timeout=300,
    ).stdout.strip()  # fmt: skip
    assert jars.count(".jar") >= 4
    run = subprocess.run(
        [
            str(SPARK_HOME / "bin" / "spark-submit"),
            "--master",
            master,
            "--jars",
            jars,
            "--conf",
            "spark.executor.memory=1g",
            submit.__file__,
            "--once",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert any(p.name.startswith("app-") for p in worker_dir.iterdir()), "nothing ran on it"

    store = open_store(settings, app="shopstream-test")
    try:
        docs = store.orders.orders(ids)
        assert [(d or {}).get("customer", {}).get("id") for d in docs] == [11] * len(ids)
        assert all(d is not None and d["units"] == 2 for d in docs)
    finally:
        store.drop()
        store.close()
    landed = {
        row["order_id"]
        for uri in committed_files(f"{settings.lake}/orders")
        for row in pq.read_table(uri.removeprefix("file:"), columns=["order_id"]).to_pylist()
    }
    assert set(ids) <= landed
