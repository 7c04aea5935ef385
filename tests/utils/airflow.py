"""Running code under Airflow's own interpreter (its virtualenv), offline, for the DAG tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from shopstream.config import Settings
from shopstream.stack.airflow import DAG_CONFIG_VARIABLE, DAGS_FOLDER, dag_config

__all__ = ["DAG_TEST", "dag_env", "migrate", "offline_env", "run_python"]

# `dag.test()` of one DAG for one logical date: the run's state, interval and task states.
DAG_TEST = """
import json, pendulum
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(%r).get_dag(%r)
run = dag.test(logical_date=pendulum.parse(%r))
print(json.dumps({"state": str(run.state),
                  "interval": [str(run.data_interval_start), str(run.data_interval_end)],
                  "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()}}))
"""


def run_python(python: Path, code: str, env: dict[str, str], timeout: float = 300) -> Any:
    """Runs `code` with Airflow's interpreter; returns the JSON its last line prints."""
    proc = subprocess.run(
        [str(python), "-c", code], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    if os.environ.get("AIRFLOW_TEST_DEBUG"):
        print(proc.stdout[-20000:], proc.stderr[-20000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def offline_env(home: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        **extra,
    }


def migrate(airflow: Path, env: dict[str, str], *pools: str) -> None:
    """`airflow db migrate` of a fresh AIRFLOW_HOME, and the named pools (one slot each)."""
    for args in (["db", "migrate"], *(["pools", "set", p, "1", "test"] for p in pools)):
        proc = subprocess.run(
            [str(airflow), *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-3000:]


def dag_env(settings: Settings, shopstream_bin: str, **overrides: Any) -> dict[str, str]:
    """The DAGs' configuration as `shopstream up` prepares it from `settings` (dbt's profile
    and manifest written too), with `overrides` of its entries."""
    from shopstream.warehouse.dbt import write_manifest, write_profiles

    write_profiles(settings)
    write_manifest(settings)
    config = dag_config(settings, Path(shopstream_bin)) | overrides
    return {DAG_CONFIG_VARIABLE: json.dumps(config), "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
