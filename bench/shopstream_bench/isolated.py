"""Servers the benchmark owns: a throw-away stack and the bare baseline app.

The stack lives in a fresh directory under /tmp, listens on free ports of 127.0.0.1 and
writes to its own topics, so a user's stack and data are never touched. It is stopped
and deleted whatever happens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from shopstream.config import Settings
from shopstream.db import migrate
from shopstream.messaging import ensure_topics
from shopstream.simulator import seed
from shopstream.stack import down, status, up
from shopstream.stack.sandbox import HOST, free_ports, sandbox_dir, sandbox_settings

__all__ = ["BENCH_DIR", "HOST", "bare_server", "free_ports", "isolated_stack", "service_pids"]

log = logging.getLogger(__name__)

Report = Callable[[str], None]
BENCH_DIR = Path(__file__).resolve().parents[1]
CUSTOMERS, PRODUCTS, CATALOG_SEED = 10_000, 1_000, 1
# Settings naming an external server or store; they must not leak into the stack's processes
# (the streaming job, when enabled, would otherwise write a user's lake and checkpoints).
_EXTERNAL_ENV = (
    "SHOPSTREAM_KAFKA_BOOTSTRAP",
    "SHOPSTREAM_POSTGRES_DSN",
    "SHOPSTREAM_MONGO_URI",
    "SHOPSTREAM_LAKE_URI",
    "SHOPSTREAM_CHECKPOINT_URI",
    "SHOPSTREAM_SPARK_MASTER",
)


def _bench_settings(base: Settings, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "cache_dir": base.cache_path,  # share the downloaded Kafka jars and FerretDB
        "api_keys": SecretStr(f"bench-{secrets.token_urlsafe(16)}"),
        "rate_limit": "100000000/second",
        "stream_enabled": False,
        "airflow_enabled": False,  # a benchmark measures one thing; Airflow would share the cores
        "lake_uri": None,  # the lake and checkpoints stay in the stack's own directory
        "checkpoint_uri": None,
        "orders_topic": f"bench-orders-{uuid.uuid4().hex[:8]}",
        "dlq_topic": f"bench-dlq-{uuid.uuid4().hex[:8]}",
    }
    return sandbox_settings(data_dir, **{**values, **overrides})


def _provision(settings: Settings) -> None:
    # Seeded before the API starts, so its id cache holds the whole catalog from the start.
    migrate(settings.postgres_url)
    ensure_topics(settings)
    seed(settings.postgres_url, customers=CUSTOMERS, products=PRODUCTS, seed_value=CATALOG_SEED)


@contextlib.contextmanager
def _sealed_launch(cwd: Path, env: Mapping[str, str] | None = None) -> Iterator[None]:
    """While the stack starts: no external-server variables, and no `.env` in reach.

    `env`: extra variables for the stack's processes (supervisord passes its own on).
    """
    saved = {k: os.environ.pop(k) for k in _EXTERNAL_ENV if k in os.environ}
    extra = dict(env or {})
    replaced = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    old_cwd = Path.cwd()
    os.chdir(cwd)  # supervisord and its programs inherit it; a `.env` is read from there
    try:
        yield
    finally:
        os.chdir(old_cwd)
        for key, value in replaced.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.environ.update(saved)


@contextlib.contextmanager
def isolated_stack(
    base: Settings,
    report: Report,
    *,
    env: Mapping[str, str] | None = None,
    before_delete: Callable[[Settings], None] | None = None,
    **overrides: Any,
) -> Iterator[Settings]:
    """A running, seeded stack of its own; stopped and deleted on exit.

    `overrides` are settings for the stack, e.g. `stream_enabled=True, stream_trigger_s=0.5`
    to run the streaming job under supervisord as well (it is left out by default). `env`
    adds variables to the stack's processes; `before_delete` gets to read the stopped stack's
    files (logs) before its directory is deleted.
    """
    data_dir = sandbox_dir("shopstream-bench-")
    settings = _bench_settings(base, data_dir, **overrides)
    try:
        report(f"isolated stack in {data_dir} (API {settings.api_url})")
        with _sealed_launch(data_dir, env):
            up(settings, report=report, provision=_provision)
        yield settings
    finally:
        try:
            down(settings, report=report)
            if before_delete is not None:
                before_delete(settings)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
            report(f"removed {data_dir}")


def service_pids(settings: Settings) -> dict[str, int]:
    """PID of each running stack service (supervisord runs the commands without a shell)."""
    return {row.name: row.pid for row in status(settings) if row.pid is not None}


def _wait_http(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bare app exited ({proc.returncode}); see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1).raise_for_status()
            return
        time.sleep(0.2)
    raise RuntimeError(f"the bare app did not answer {url} within {timeout:.0f}s; see {log_path}")


@contextlib.contextmanager
def bare_server(port: int, log_path: Path, timeout: float = 30.0) -> Iterator[int]:
    """The baseline app under uvicorn with the API's settings; yields its PID."""
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "shopstream_bench.bare_app:app",
        f"--app-dir={BENCH_DIR}",
        f"--host={HOST}",
        f"--port={port}",
        "--loop=uvloop",
        "--http=httptools",
        "--no-access-log",
        "--log-level=warning",
    ]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://{HOST}:{port}/healthz", proc, log_path, timeout)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
