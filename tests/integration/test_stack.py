"""`up`, `down`, `status`: idempotence, external services, port conflicts, supervised job."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from shopstream.config import Settings, settings_env
from shopstream.stack import StackError, down, status, up
from shopstream.stack.supervisor import Supervisor
from shopstream.store.client import connect
from shopstream.store.ferretdb import open_store
from shopstream.streaming.committed import read_watermark
from tests.integration.conftest import (
    AIRFLOW_PASSWORD,
    API_KEY,
    new_base_dir,
    provision,
    stack_settings,
)

pytestmark = pytest.mark.integration


def attached_settings(stack: Settings, base: Path, **overrides: Any) -> Settings:
    """A second stack in `base` that uses the session stack's servers as external ones."""
    return stack_settings(
        base,
        kafka_bootstrap=stack.kafka_servers,
        mongo_uri=stack.mongo_url,
        postgres_dsn=stack.postgres_url,
        orders_topic=stack.orders_topic,
        dlq_topic=stack.dlq_topic,
        **{"dashboard_enabled": False, **overrides},  # the session stack's dashboard suffices
    )


def states(settings: Settings) -> dict[str, str]:
    return {s.name: s.state for s in status(settings)}


def test_up_is_idempotent_and_reports_the_running_stack(stack: Settings) -> None:
    before = {s.name: s.pid for s in status(stack)}
    assert set(before) == {"postgres", "kafka", "mongo", "api", "dashboard"}
    assert all(before.values())
    lines: list[str] = []
    up(stack, report=lines.append, provision=provision)
    assert {s.name: s.pid for s in status(stack)} == before
    assert sum("already running" in line for line in lines) == 5


def test_status_command_exits_zero_and_no_secret_reaches_its_output_or_a_log(
    stack: Settings,
) -> None:
    # Requests with a right and a wrong key first, so the API has had a reason to log keys.
    order = {"customer_id": 4, "items": [{"product_id": 2, "quantity": 1}]}
    for key in (API_KEY, "it-wrong-key-0b9e"):
        httpx.post(f"{stack.api_url}/order", json=order, headers={"X-API-Key": key}, timeout=30)
    env = {**os.environ, **settings_env(stack)}
    proc = subprocess.run(
        [sys.executable, "-m", "shopstream", "status"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "running" in proc.stdout
    secrets = [*stack.api_key_list, "it-wrong-key-0b9e", AIRFLOW_PASSWORD]
    assert not [s for s in secrets if s in proc.stdout + proc.stderr]
    logs = [p for p in (stack.data_path / "logs").rglob("*") if p.is_file()]
    assert logs
    for log in logs:
        text = log.read_text(errors="replace")
        assert not [s for s in secrets if s in text], f"a secret is in {log}"
    # The supervisor's config holds the services' environments: the owner's alone.
    assert stat.S_IMODE((stack.data_path / "supervisord.conf").stat().st_mode) == 0o600


def test_external_services_start_nothing_and_round_trip(stack: Settings) -> None:
    base = new_base_dir()
    settings = attached_settings(stack, base)
    try:
        up(settings, provision=provision)
        assert states(settings) == {
            "api": "running",
            "postgres": "external",
            "kafka": "external",
            "mongo": "external",
        }
        procs = Supervisor(settings.data_path).processes()
        assert set(procs) == {"api"}  # supervisord knows no other program
        api_pid = procs["api"]["pid"]
        assert down(settings) is True
        assert states(settings)["api"] == "stopped"
        with pytest.raises(ProcessLookupError):
            os.kill(api_pid, 0)
        assert down(settings) is False  # nothing left to stop
    finally:
        down(settings)
        shutil.rmtree(base, ignore_errors=True)


def test_port_in_use_is_a_clear_error_naming_the_setting() -> None:
    base = new_base_dir()
    settings = stack_settings(base)
    try:
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", settings.postgres_port))
        blocker.listen()
        with pytest.raises(StackError) as info:
            up(settings, provision=provision)
        blocker.close()
        assert f"port {settings.postgres_port} is already in use" in str(info.value)
        assert "SHOPSTREAM_POSTGRES_PORT" in str(info.value)
    finally:
        down(settings)
        shutil.rmtree(base, ignore_errors=True)


def test_unreachable_external_service_is_a_clear_error() -> None:
    base = new_base_dir()
    settings = stack_settings(base, kafka_bootstrap="127.0.0.1:1")
    try:
        with pytest.raises(StackError, match="SHOPSTREAM_KAFKA_BOOTSTRAP"):
            up(settings, provision=provision)
        assert Supervisor(settings.data_path).pid() is None  # nothing was started
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_down_keeps_data_and_up_restarts(stack: Settings) -> None:
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS keepme (x int)")
        conn.execute("INSERT INTO keepme VALUES (42)")
    assert down(stack) is True
    assert set(states(stack).values()) == {"stopped"}
    up(stack, provision=provision)
    assert set(states(stack).values()) == {"running"}
    with psycopg.connect(stack.postgres_url) as conn:
        assert conn.execute("SELECT x FROM keepme").fetchall() == [(42,)]


def test_mongo_role_upserts_by_id_and_queries(stack: Settings) -> None:
    client = connect(stack.mongo_url)
    try:
        coll = client[stack.mongo_database]["it_smoke"]
        for total in (10, 12):  # a replay overwrites, it does not duplicate
            coll.replace_one({"_id": "o-1"}, {"_id": "o-1", "total": total}, upsert=True)
        coll.replace_one({"_id": "o-2"}, {"_id": "o-2", "total": 5}, upsert=True)
        assert coll.count_documents({}) == 2
        assert coll.find_one({"_id": "o-1"}) == {"_id": "o-1", "total": 12}
        assert [d["_id"] for d in coll.find({"total": {"$gt": 6}})] == ["o-1"]
        coll.drop()
    finally:
        client.close()


def test_streaming_job_runs_under_up_and_enriches_orders(stack: Settings) -> None:
    base = new_base_dir()
    settings = attached_settings(
        stack,
        base,
        stream_enabled=True,
        stream_trigger_s=0.5,
        mongo_database=f"it_up_{uuid.uuid4().hex[:8]}",
    )
    store = open_store(settings, app="shopstream-test")
    try:
        up(settings, provision=provision)
        assert states(settings)["stream"] == "running"
        oid = str(uuid.uuid4())
        body = {"order_id": oid, "customer_id": 9, "items": [{"product_id": 6, "quantity": 2}]}
        resp = httpx.post(f"{settings.api_url}/order", json=body, headers={"X-API-Key": API_KEY})
        assert resp.status_code == 202
        deadline = time.monotonic() + 120
        while (order := store.orders.orders([oid])[0]) is None:
            assert time.monotonic() < deadline, "the supervised job did not enrich the order"
            time.sleep(1)
        assert order["units"] == 2
        # The run loop publishes both queries' progress (the dashboard's lag) and the lake's
        # watermark (the batch branch's sensor): the order's offset is in the enrich status.
        while not ((done := store.status.query_progress("enrich")) and done.end_offsets):
            assert time.monotonic() < deadline, "no progress published for the enrichment"
            time.sleep(1)
        assert set(done.end_offsets) == {settings.orders_topic}
        # A batch reports the watermark its predecessors set: a second order brings it.
        body = {**body, "order_id": str(uuid.uuid4())}
        resp = httpx.post(f"{settings.api_url}/order", json=body, headers={"X-API-Key": API_KEY})
        assert resp.status_code == 202
        while read_watermark(f"{settings.lake}/orders") is None:
            assert time.monotonic() < deadline + 60, "the lake's watermark was not published"
            time.sleep(1)
        assert down(settings) is True
        assert states(settings)["stream"] == "stopped"
        log = (settings.data_path / "logs" / "stream.log").read_text()
        assert "streaming job stopped" in log  # stopped its queries itself, cleanly
        assert "terminated with error" not in log
    finally:
        down(settings)
        store.drop()
        store.close()
        shutil.rmtree(base, ignore_errors=True)
