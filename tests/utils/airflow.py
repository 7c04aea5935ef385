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
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
dag = DagBag(%r).get_dag(%r)
run = dag.test(logical_date=pendulum.parse(%r))
xcom = {}
with create_session() as session:
    for x in session.scalars(XComModel.get_many(run_id=run.run_id, key="return_value",
                                                dag_ids=dag.dag_id, map_indexes=-1)):
        value = XComModel.deserialize_value(x)
        try:
            value = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            pass
        xcom[x.task_id] = value
print(json.dumps({"state": str(run.state),
                  "interval": [str(run.data_interval_start), str(run.data_interval_end)],
                  "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()},
                  "xcom": xcom}, default=str))
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
    written too), with `overrides` of its entries."""
    from shopstream.warehouse.dbt import write_profiles

    write_profiles(settings)
    config = dag_config(settings, Path(shopstream_bin)) | overrides
    return {DAG_CONFIG_VARIABLE: json.dumps(config), "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
