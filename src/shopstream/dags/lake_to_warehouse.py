"""The batch ELT, scheduled: each lake day (UTC) into the warehouse, reconciled, modelled.

Thin on purpose: the load steps run the project's CLI, and the dbt project
is the package's, rendered by astronomer-cosmos as one task per model (`dbt build --select
<model>`: the model, then its tests) from a manifest `shopstream up` writes (no dbt call at
parse time). dbt runs from its own virtualenv. Configured from
shopstream's settings (`SHOPSTREAM_DAG_CONFIG`).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.sensors.bash import BashSensor
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior, TestIndirectSelection

# Computed from shopstream's settings by `shopstream up` (`stack.airflow.dag_config`):
# the DAGs have no defaults of their own to drift from the settings'.
CONFIG = json.loads(os.environ["SHOPSTREAM_DAG_CONFIG"])
SHOPSTREAM = CONFIG["shopstream_bin"]
START = CONFIG["warehouse_start_date"]
CATCHUP = bool(CONFIG["warehouse_catchup"])
TARGET = CONFIG["warehouse"]
POOL = CONFIG["warehouse_pool"]
DBT_BIN = CONFIG["dbt_bin"]
DBT_PROJECT = Path(CONFIG["dbt_project"])
DBT_PROFILES = Path(CONFIG["dbt_profiles"])
DBT_MANIFEST = Path(CONFIG["dbt_manifest"])
# The lake day D of a run: its data interval is D 00:00 .. D+1 00:00 UTC.
DAY = "{{ data_interval_start.in_timezone('UTC').strftime('%Y-%m-%d') }}"

DOC = f"""
### Lake to warehouse ({TARGET})

One run per lake day D (UTC), from `{START}` on (`catchup`; one run at a time, and every task
that writes the warehouse takes the `{POOL}` pool: DuckDB has one writer). A run for D
never touches another day.

1. **wait_for_lake_day**: `shopstream warehouse complete --date D`: the lake watermark has
   passed the end of D plus the grace period (reschedules every 5 minutes; fails after 12 h).
2. **load_raw_orders**: exactly D's committed lake files into `raw.orders`, replacing D's rows.
3. **snapshot_dimensions**: customers and products from PostgreSQL into `raw.*`.
4. **reconcile**: D's raw rows and distinct orders must equal the lake's, or the run fails
   naming both numbers.
5. **dbt**: one task per model (staging, then marts), each `dbt build` of the model with its
   data tests for D; a failed test fails the run.
6. **publish**: marks the load built and refreshes the dashboard's serving copy.

Safe to rerun: clear the run (or any task) and every write replaces what D had.
See docs/warehouse.md.
"""

DEFAULTS = {
    "owner": "shopstream",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(minutes=60),
    "pool": POOL,
}


def _cli(task_id: str, command: str, **kwargs: object) -> BashOperator:
    return BashOperator(task_id=task_id, bash_command=f"{SHOPSTREAM} warehouse {command}", **kwargs)


with DAG(
    dag_id="lake_to_warehouse",
    description="Each lake day into the warehouse, reconciled, and the dbt marts",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.parse(START, tz="UTC"),
    catchup=CATCHUP,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["shopstream", "warehouse", TARGET],
    doc_md=DOC,
) as dag:
    complete = BashSensor(
        task_id="wait_for_lake_day",
        bash_command=f"{SHOPSTREAM} warehouse complete --date {DAY}",
        mode="reschedule",
        poke_interval=300,
        timeout=12 * 3600,
        retries=0,  # the sensor's own timeout is the limit
        pool="default_pool",  # waiting holds no warehouse connection
    )
    raw = _cli("load_raw_orders", f"raw --date {DAY}")
    dimensions = _cli("snapshot_dimensions", f"dimensions --date {DAY}")
    # a mismatch is not transient: one retry for a lost connection, then fail loudly
    reconcile = _cli("reconcile", f"reconcile --date {DAY}", retries=1)
    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT, manifest_path=DBT_MANIFEST, project_name="shopstream"
        ),
        profile_config=ProfileConfig(
            profile_name="shopstream", target_name=TARGET, profiles_yml_filepath=DBT_PROFILES
        ),
        execution_config=ExecutionConfig(
            dbt_executable_path=DBT_BIN,
            invocation_mode=InvocationMode.SUBPROCESS,
            # a model's task runs its tests and those over it and its ancestors (the models
            # join the dimensions they are tested against, so every test has one home)
            test_indirect_selection=TestIndirectSelection.BUILDABLE,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            emit_datasets=False,
        ),
        # the day through the environment, not `vars`: a new var makes dbt re-parse the
        # project in every task (macros/day.sql)
        operator_args={
            "env": {"SHOPSTREAM_WAREHOUSE_DAY": DAY},
            "append_env": True,
            "install_deps": False,
            "pool": POOL,
        },
        default_args=DEFAULTS,
    )
    publish = _cli("publish", f"publish --date {DAY}")
    complete >> raw >> dimensions >> reconcile >> dbt >> publish
