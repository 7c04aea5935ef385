"""Demand spikes, scheduled: the daily detection and today's early warning.

Thin on purpose: every task runs the project's CLI (from the project's own virtualenv), so the
logic is the package's and runs without Airflow too (`shopstream spikes`). Configured from
shopstream's settings (`SHOPSTREAM_DAG_CONFIG`).
Nothing here does I/O at import: the DAG processor parses this file every 30 s.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.sensors.bash import BashSensor
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.timetables.trigger import CronTriggerTimetable

# Computed from shopstream's settings by `shopstream up` (`stack.airflow.dag_config`):
# the DAGs have no defaults of their own to drift from the settings'.
CONFIG = json.loads(os.environ["SHOPSTREAM_DAG_CONFIG"])
SHOPSTREAM = CONFIG["shopstream_bin"]
TIMEZONE = CONFIG["business_timezone"]
START = CONFIG["spike_start_date"]
CATCHUP = bool(CONFIG["spike_catchup"])
EVERY = int(CONFIG["spike_emerging_every_min"])
TZ = pendulum.timezone(TIMEZONE)
# The business day D of a daily run: its data interval is D 00:00 .. D+1 00:00 local time.
DAY = "{{ data_interval_start.in_timezone('" + TIMEZONE + "').strftime('%Y-%m-%d') }}"

DETECTION_DOC = f"""
### Demand spike detection

One run per business day D (timezone `{TIMEZONE}`), from `{START}` on (`catchup`: missed and
past days run in order, one at a time: `max_active_runs=1`, as the detector rewrites the
demand history).

1. **wait_for_day_complete**: `shopstream spikes complete --date D` until the lake's watermark
   is past the end of D plus the grace period and the enrichment has caught up with the lake
   (reschedules itself every 5 minutes; fails after 12 hours).
2. **detect_spikes**: `shopstream spikes run --date D`: each product's demand of D into
   `daily_demand`, D's spikes (units above the margin times the P95 of the product's own
   history) into `demand_spikes`, replacing what D had. Safe to rerun (clear the task). New
   spikes of a recent D are then posted to the spike webhook, once each (if one is set:
   `SHOPSTREAM_SPIKE_WEBHOOK_URL`); a failed POST does not fail the task.

Rule and grace: `SHOPSTREAM_SPIKE_*` settings; see docs/spikes.md.
"""

EMERGING_DOC = f"""
### Emerging spikes (today, provisional)

Every {EVERY} minutes: `shopstream spikes emerging --at <run time>` compares each product's
units so far today with the P95 of its units up to the same time on earlier days and stores
the products above it in `emerging_spikes` (with the time each first crossed), then posts each
product newly above to the spike webhook (if one is set) and retries alerts that failed. No
catchup: only the latest state matters.
"""

DEFAULTS = {
    "owner": "shopstream",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(minutes=30),
}

with DAG(
    dag_id="demand_spike_detection",
    description="Daily demand per product and its P95 spikes (shopstream spikes run)",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=TZ),
    start_date=pendulum.parse(START, tz=TZ),
    catchup=CATCHUP,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["shopstream", "spikes"],
    doc_md=DETECTION_DOC,
) as detection:
    complete = BashSensor(
        task_id="wait_for_day_complete",
        bash_command=f"{SHOPSTREAM} spikes complete --date {DAY}",
        mode="reschedule",
        poke_interval=300,
        timeout=12 * 3600,
        retries=0,  # the sensor's own timeout is the limit
    )
    detect = BashOperator(
        task_id="detect_spikes",
        bash_command=f"{SHOPSTREAM} spikes run --date {DAY}",
    )
    complete >> detect

with DAG(
    dag_id="demand_spike_emerging",
    description="Today's emerging (provisional) demand spikes (shopstream spikes emerging)",
    schedule=CronTriggerTimetable(f"*/{EVERY} * * * *", timezone=TZ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULTS, "retries": 1, "execution_timeout": timedelta(minutes=EVERY)},
    tags=["shopstream", "spikes"],
    doc_md=EMERGING_DOC,
) as emerging:
    BashOperator(
        task_id="refresh_emerging_spikes",
        bash_command=f"{SHOPSTREAM} spikes emerging --at {{{{ dag_run.run_after.isoformat() }}}}",
    )
