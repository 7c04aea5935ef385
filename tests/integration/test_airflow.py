"""The spike DAGs in real Airflow (its own virtualenv): integrity, a `dag.test()` for one day
against the real stores, and the stack's running Airflow executing a triggered run."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from shopstream.config import Settings, settings_env
from shopstream.stack import status, up
from shopstream.stack.airflow import (
    ADMIN_USER,
    DAGS_FOLDER,
    airflow_bin,
    airflow_url,
    ensure_airflow,
)
from shopstream.store.ferretdb import open_store
from shopstream.warehouse.serving import History
from tests.integration.conftest import API_KEY
from tests.utils import fresh_store
from tests.utils.airflow import DAG_TEST, dag_env, migrate, offline_env, run_python
from tests.utils.orders import write_orders
from tests.utils.spikes import SPIKE_DAY, SPIKER, dataset, mark_complete, write_watermark
from tests.utils.warehouse import SourceOrders, land, post_orders

pytestmark = pytest.mark.integration

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def airflow_python(stack: Settings) -> Path:
    ensure_airflow(stack.cache_path)
    return airflow_bin(stack).parent / "python"


INTEGRITY = """
import json, socket, subprocess, time
def refuse(*args, **kwargs):
    raise RuntimeError("a DAG file did I/O at import")
socket.socket.connect = refuse
subprocess.Popen.__init__ = refuse
started = time.monotonic()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(%r)
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tags": sorted(dag.tags), "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
        "doc_md": dag.doc_md or "", "timetable": type(dag.timetable).__name__,
        "order": [t.task_id for t in dag.topological_sort()],
        "tasks": {t.task_id: {
            "type": type(t).__name__, "retries": t.retries,
            "backoff": t.retry_exponential_backoff, "mode": getattr(t, "mode", None),
            "timeout": getattr(t, "timeout", None), "command": getattr(t, "bash_command", None),
            "pool": t.pool, "group": t.task_group.group_id if t.task_group else None,
        } for t in dag.tasks},
    }
print(json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def warehouse_env(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    path = tmp_path_factory.mktemp("dbt") / "wh.duckdb"
    # the defaults' catch-up (the session stack turns it off for its own Airflow)
    defaults = Settings.model_fields
    update = {
        "warehouse_duckdb_path": path,
        "spike_catchup": defaults["spike_catchup"].default,
        "warehouse_catchup": defaults["warehouse_catchup"].default,
    }
    return dag_env(stack.model_copy(update=update), "/opt/shopstream/bin/shopstream")


def test_dag_integrity(airflow_python: Path, tmp_path: Path, warehouse_env: dict[str, str]) -> None:
    env = offline_env(tmp_path, **warehouse_env)
    out = run_python(airflow_python, INTEGRITY % str(DAGS_FOLDER), env)
    assert out["errors"] == {}
    dags = out["dags"]
    assert set(dags) == {"demand_spike_detection", "demand_spike_emerging", "lake_to_warehouse"}
    for dag in dags.values():
        assert "shopstream" in dag["tags"]
        assert "shopstream " in dag["doc_md"]
        assert dag["max_active_runs"] == 1
        for task in dag["tasks"].values():
            assert task["retries"] >= 1 or task["type"] == "BashSensor"
    for name in ("demand_spike_detection", "demand_spike_emerging"):
        assert "spikes" in dags[name]["tags"]
        assert "shopstream spikes" in dags[name]["doc_md"]
    daily = dags["demand_spike_detection"]
    assert daily["catchup"] is True  # the default (SHOPSTREAM_SPIKE_CATCHUP)
    assert daily["timetable"] == "CronDataIntervalTimetable"
    assert daily["order"] == ["wait_for_day_complete", "detect_spikes"]
    sensor, detect = daily["tasks"]["wait_for_day_complete"], daily["tasks"]["detect_spikes"]
    assert sensor["type"] == "BashSensor"
    assert sensor["mode"] == "reschedule"
    assert float(sensor["timeout"]) > 0
    assert detect["retries"] == 3
    assert detect["backoff"] is True
    assert detect["command"].startswith("/opt/shopstream/bin/shopstream spikes run --date {{")
    assert "data_interval_start" in detect["command"]  # the run's interval, never now()
    emerging = dags["demand_spike_emerging"]
    assert emerging["catchup"] is False
    task = emerging["tasks"]["refresh_emerging_spikes"]
    assert task["retries"] >= 1
    assert "spikes emerging --at {{" in task["command"]

    elt = dags["lake_to_warehouse"]
    assert elt["catchup"] is True
    assert elt["timetable"] == "CronDataIntervalTimetable"
    # one dbt process per run, not one task per model (decision 46)
    assert elt["order"] == ["plan", "load_day", "build"]
    tasks = elt["tasks"]
    assert all(tasks[t]["pool"] == "warehouse" for t in ("load_day", "build"))
    assert tasks["load_day"]["type"] == "MappedOperator"  # one task per planned day
    sensor = tasks["plan"]  # waits for the day, then plans
    assert sensor["mode"] == "reschedule"
    assert sensor["pool"] == "default_pool"  # waiting holds no warehouse slot
    assert float(sensor["timeout"]) > 0
    build = tasks["build"]["command"]
    assert build.startswith("/opt/shopstream/bin/shopstream warehouse build --days ")
    assert "xcom_pull(task_ids='plan')" in build
    assert "--retry" in build
    assert "try_number" in build


def test_dag_test_detects_one_day_against_the_real_stores(
    stack: Settings, airflow_python: Path, tmp_path: Path
) -> None:
    with fresh_store(stack, "airflow_dagtest") as db:
        write_orders(db, dataset(NEW_YORK), NEW_YORK, stack)
        lake = tmp_path / "lake"
        end = datetime.combine(SPIKE_DAY + timedelta(days=1), datetime.min.time(), NEW_YORK)
        mark_complete(db, lake, end + timedelta(hours=2))
        settings = stack.model_copy(
            update={
                "mongo_database": db.name,
                "lake_uri": lake.as_uri(),
                "business_timezone": "America/New_York",
                "spike_lookback_days": 30,
            }
        )
        home = tmp_path / "airflow"
        home.mkdir()
        shopstream = str(Path(sys.executable).parent / "shopstream")
        env = {**offline_env(home), **settings_env(settings), **dag_env(settings, shopstream)}
        migrate(airflow_python.parent / "airflow", env)
        # a manual run's interval is the day before its logical date: D+1 00:00 runs day D
        code = DAG_TEST % (str(DAGS_FOLDER), "demand_spike_detection", end.isoformat())
        out = run_python(airflow_python, code, env)
        assert out["state"] == "success", out
        assert out["interval"][0].startswith(SPIKE_DAY.isoformat())
        spikes = db.spikes.spikes_of(SPIKE_DAY.isoformat())
        assert spikes is not None
        assert [s["product_id"] for s in spikes.spikes] == [SPIKER]
        assert db.demand.stored_day(SPIKE_DAY).products


@pytest.fixture(scope="module")
def airflow_stack(stack: Settings) -> Iterator[Settings]:
    """The session stack with its Airflow running (started here, ~40 s; stopped after, so
    the later tests do not share the cores with its scheduler)."""
    settings = stack.model_copy(update={"airflow_enabled": True})
    up(settings)
    yield settings
    up(stack)  # the session's own config: supervisord removes (stops) the Airflow programs
    assert "airflow-scheduler" not in {s.name for s in status(settings) if s.state == "running"}


def _token(settings: Settings) -> str:
    response = httpx.post(
        f"{airflow_url(settings)}/auth/token",
        json={
            "username": ADMIN_USER,
            "password": settings.airflow_admin_password.get_secret_value(),
        },
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _trigger(settings: Settings, dag_id: str, logical: datetime, timeout: float = 300) -> Any:
    """Triggers a run of `dag_id` in the stack's Airflow (REST API) and waits for its end."""
    headers = {"Authorization": f"Bearer {_token(settings)}"}
    base = f"{airflow_url(settings)}/api/v2/dags/{dag_id}"
    # the DAG processor may not have parsed the file yet in a fresh stack
    deadline = time.monotonic() + 120
    while httpx.get(base, headers=headers, timeout=30).status_code != 200:
        assert time.monotonic() < deadline, f"{dag_id} never appeared in the stack's Airflow"
        time.sleep(2)
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    created = httpx.post(
        f"{base}/dagRuns",
        json={"dag_run_id": run_id, "logical_date": logical.isoformat()},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 200, created.text
    deadline = time.monotonic() + timeout
    run = created.json()
    while run["state"] not in ("success", "failed"):
        assert time.monotonic() < deadline, f"the triggered run of {dag_id} is still {run['state']}"
        time.sleep(3)
        run = httpx.get(f"{base}/dagRuns/{run_id}", headers=headers, timeout=30).json()
    return run


def test_the_stacks_airflow_runs_a_triggered_day(airflow_stack: Settings) -> None:
    settings = airflow_stack
    states = {s.name: s.state for s in status(settings)}
    assert {states[n] for n in ("airflow-api", "airflow-scheduler", "airflow-dag-processor")} == {
        "running"
    }
    utc = ZoneInfo("UTC")  # the session stack's business timezone
    db = open_store(settings, app="shopstream-test")
    try:
        write_orders(db, dataset(NEW_YORK), utc, settings)
        end = datetime.combine(SPIKE_DAY + timedelta(days=1), datetime.min.time(), UTC)
        # every day up to now complete: the DAG's own run for yesterday does not wait
        mark_complete(db, Path(settings.lake.removeprefix("file://")), settings.clock.now())
        run = _trigger(settings, "demand_spike_detection", end)
        assert run["data_interval_start"].startswith(SPIKE_DAY.isoformat())
        assert run["state"] == "success"
        spikes = db.spikes.spikes_of(SPIKE_DAY.isoformat())
        assert spikes is not None
        assert SPIKER in [s["product_id"] for s in spikes.spikes]
    finally:
        db.close()


WAREHOUSE_DAY = "2025-07-01"  # a day no other test writes


def test_the_stacks_airflow_loads_a_triggered_lake_day(
    airflow_stack: Settings, spark: SparkSession, tmp_path: Path
) -> None:
    """lake_to_warehouse in the running stack: a lake day landed by the real landing query,
    loaded, reconciled and built by the scheduler's own tasks."""
    settings = airflow_stack
    source = SourceOrders()
    with httpx.Client(base_url=settings.api_url, headers={"X-API-Key": API_KEY}, timeout=30) as api:
        post_orders(api, source, WAREHOUSE_DAY, 25, seed=4, resend=2)
    # into the stack's own lake (the stack's Airflow reads it), from a checkpoint of our own
    land(spark, settings.model_copy(update={"checkpoint_uri": (tmp_path / "ckpt").as_uri()}))
    write_watermark(Path(settings.lake.removeprefix("file://")), settings.clock.now())
    end = datetime.combine(date.fromisoformat(WAREHOUSE_DAY) + timedelta(days=1), dtime.min, UTC)
    run = _trigger(settings, "lake_to_warehouse", end, timeout=600)
    assert run["data_interval_start"].startswith(WAREHOUSE_DAY)
    assert run["state"] == "success"
    loads = History(settings).loads(100)
    ours = loads[pd.to_datetime(loads["day"]).dt.strftime("%Y-%m-%d") == WAREHOUSE_DAY]
    assert list(ours["status"][:1]) == ["built"]
    assert int(ours["raw_rows"].iloc[0]) == int(ours["lake_rows"].iloc[0]) == 27
    assert int(ours["raw_orders"].iloc[0]) == 25
