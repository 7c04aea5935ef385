"""The batch ELT, scheduled: lake days (UTC) into the warehouse, reconciled, modelled.

Thin on purpose: every step runs the project's CLI (dbt runs from its own virtualenv, once
per run for all the run's days). Configured from shopstream's settings
(`SHOPSTREAM_DAG_CONFIG`). Why one dbt task and not one per model: decision 46.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, PokeReturnValue, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

# Computed from shopstream's settings by `shopstream up` (`stack.airflow.dag_config`):
# the DAGs have no defaults of their own to drift from the settings'.
CONFIG = json.loads(os.environ["SHOPSTREAM_DAG_CONFIG"])
SHOPSTREAM = CONFIG["shopstream_bin"]
START = CONFIG["warehouse_start_date"]
CATCHUP = bool(CONFIG["warehouse_catchup"])
TARGET = CONFIG["warehouse"]
POOL = CONFIG["warehouse_pool"]
# The lake day D of a run: its data interval is D 00:00 .. D+1 00:00 UTC.
DAY = "{{ data_interval_start.in_timezone('UTC').strftime('%Y-%m-%d') }}"
# A run loads at most this many days; the next run takes the rest.
MAX_DAYS = 92

DOC = f"""
### Lake to warehouse ({TARGET})

One run per lake day D (UTC), from `{START}` on (one run at a time; every task that writes
the warehouse takes the `{POOL}` pool: DuckDB has one writer).

1. **plan** (a sensor, `shopstream warehouse plan --wait`): waits until the lake watermark
   has passed the end of D plus the grace period (checks every minute; fails after 12 h),
   then lists the days this run loads: D, unless it is built already, and every other
   complete lake day since `{START}` that is not built (a first start or an outage is one
   run, not one per day; at most {MAX_DAYS} days, the next run takes the rest). A manual,
   backfill or cleared run reloads D even if it was built.
2. **load_day** (one task per planned day): the day's lake files compacted into a few, then
   exactly its files into `raw.orders`, replacing its rows, then its reconciliation: the
   day's raw rows and distinct orders must equal the lake's, or the task fails naming both
   numbers. Each day has its own row in `audit.loads`.
3. **build** (`shopstream warehouse build`): the dimensions from PostgreSQL, then one
   `dbt build` over all the planned days that reconciled (every model, then every data test
   of those days' rows), each day marked built, and the dashboard's serving copy; a day whose
   load failed fails the task after the others are built. Each model's status is the task's
   XCom (`models`, `tests`) and a table in its log. A retry runs `dbt retry`: only the nodes
   that failed or were skipped.

Safe to rerun: clear the run (or any task) and every write replaces what its days had.
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


@task.sensor(
    task_id="plan",
    mode="reschedule",
    poke_interval=60,
    timeout=12 * 3600,
    pool="default_pool",  # waiting holds no warehouse slot
)
def plan_days(day: str) -> PokeReturnValue:
    """Waits until the lake day is complete, then lists the days this run loads:
    `shopstream warehouse plan --wait` (exit 3 while the day is not complete)."""
    run = get_current_context()["dag_run"]
    # a manual run, a backfill (`airflow backfill create`) or a cleared run reloads its day
    rerun = str(run.run_type).lower().rsplit(".", 1)[-1] in ("manual", "backfill")
    args = [SHOPSTREAM, "warehouse", "plan", "--date", day, "--first", START, "--wait"]
    args += ["--limit", str(MAX_DAYS)]
    if rerun or (run.clear_number or 0) > 0:
        args.append("--reload")
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=600)
    print(proc.stdout + proc.stderr)
    if proc.returncode == 3:
        return PokeReturnValue(is_done=False)
    if proc.returncode != 0:
        raise RuntimeError(f"shopstream warehouse plan failed ({proc.returncode})")
    days: list[Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return PokeReturnValue(is_done=True, xcom_value=[{"DAY": str(d)} for d in days])


with DAG(
    dag_id="lake_to_warehouse",
    description="Lake days into the warehouse, reconciled, and the dbt marts",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.parse(START, tz="UTC"),
    catchup=CATCHUP,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["shopstream", "warehouse", TARGET],
    doc_md=DOC,
) as dag:
    days = plan_days(DAY)
    # a mismatch is not transient: one retry for a lost connection, then fail loudly
    load = BashOperator.partial(
        task_id="load_day",
        bash_command=f'{SHOPSTREAM} warehouse stage --date "$DAY"',
        append_env=True,
        retries=1,
        map_index_template="{{ task.env['DAY'] }}",
    ).expand(env=days)
    build = BashOperator(
        task_id="build",
        # the days that reconciled are built even if another day's load failed (that one
        # fails the run, and the next run plans it again)
        trigger_rule="all_done_min_one_success",
        bash_command=(
            f"{SHOPSTREAM} warehouse build --days "
            "\"{{ ti.xcom_pull(task_ids='plan') | map(attribute='DAY') | join(',') }}\""
            "{{ ' --retry' if ti.try_number > 1 else '' }}"
        ),
    )
    days >> load >> build
