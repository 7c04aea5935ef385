"""`shopstream chaos airflow-task-killed`: Airflow's tasks killed mid-way, retried by the
scheduler, and the warehouse and the spikes equal to an undisturbed run.

On a throw-away stack with Airflow, the streaming job and the chaos load (200 orders/s):

1. 20 past days of the simulator's orders (an explicit spike on yesterday) go through the API
   and the stream; the scenario waits for yesterday to be complete (lake and store; no grace).
2. The undisturbed run: `shopstream warehouse load` of yesterday's lake day (UTC) and
   `shopstream spikes run` of yesterday's business day, as the DAGs' tasks run them; what they
   leave is the reference: every warehouse table but the audit (without the columns naming a
   load or its time: `_load_id`, `_loaded_at`, the dimensions' snapshot time), and every
   `daily_demand`, `demand_history` and `demand_spikes` document (without their
   computed/detected times). The x4 spike is on the 10th best seller, so the default rule
   finds it (the undisturbed run must: a comparison of empty days would prove nothing).
3. Both are wiped (the DuckDB file deleted, the spike collections dropped), and a run of each
   DAG for yesterday is triggered in the stack's Airflow, its tasks armed with failpoints that
   fire once across processes (`shopstream.failpoints`): `load_day` dies by SIGKILL inside its
   DuckDB transaction, `detect_spikes` dies holding the demand history's lease with a
   quarter's history half written, and the `build` task's `dbt build` is SIGKILLed by the
   scenario a second after it starts. The scheduler retries each (its `retry_delay`, 1 min).
4. Both runs must succeed with each killed task on its second try, leave exactly the
   reference, every load audited as built, and no lease behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import httpx
from confluent_kafka import Consumer

from shopstream.config import Settings, settings_env
from shopstream.dashboard.health_checks import QUERIES, end_offsets
from shopstream.domain.documents import DAILY_DEMAND, DEMAND_HISTORY, DEMAND_SPIKES, LEASES
from shopstream.simulator.runner import load_catalog
from shopstream.stack.airflow import ADMIN_USER, airflow_url
from shopstream.store.client import connect
from shopstream.store.ferretdb import open_store

__all__ = ["FAILPOINTS", "airflow_task_killed", "stack_settings"]

Report = Callable[[str], None]

# The failpoints armed in the stack's processes (each fires once: the retry runs through).
FAILPOINTS = "warehouse.replace_day.before_commit,demand.before_calendar"


def stack_settings(base: Settings) -> dict[str, Any]:
    """The stack's Airflow, no grace, and both DAGs starting today: no scheduled run is due
    (the first ends tomorrow), so the triggered runs are the only ones."""
    return {
        "airflow_enabled": True,
        "warehouse_grace_minutes": 0,
        "spike_grace_minutes": 0,
        "warehouse_start_date": base.clock.in_zone("UTC").today(),
        "spike_start_date": base.clock.today(),
    }


_DERIVED = (DAILY_DEMAND, DEMAND_HISTORY, DEMAND_SPIKES)
_UNTIMED = ("computed_at", "detected_at")
_LOAD_TIMES = ("snapshot_at",)  # the dimensions' snapshot time, renamed by the models
_KILLED = {  # DAG -> the tasks its failpoints kill
    "lake_to_warehouse": ("load_day",),
    "demand_spike_detection": ("detect_spikes",),
}
SPIKE_RANK = 10  # the x4 spike goes to the 10th best seller (~30 units a day at 800 orders)


def _cli(settings: Settings, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """The project's CLI against the stack, without failpoints (the harness's own runs)."""
    env = {**os.environ, **settings_env(settings)}
    env.pop("SHOPSTREAM_FAILPOINTS", None)
    return subprocess.run(
        [sys.executable, "-m", "shopstream", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _must(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}"
        )


# ----------------------------------------------------------------------------- outcome


def _warehouse_tables(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the warehouse but the audit: its rows (sorted), without the columns
    naming a load or a time of loading (`_load_id`, `_loaded_at`, `_snapshot_at`, and the
    dimension models' `snapshot_at`)."""
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema <> 'audit' order by 1, 2"
        ).fetchall()
        out: dict[str, list[tuple[Any, ...]]] = {}
        for schema, name in tables:
            columns = [
                c[0]
                for c in con.execute(f'describe "{schema}"."{name}"').fetchall()
                if not c[0].startswith("_") and c[0] not in _LOAD_TIMES
            ]
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = con.execute(f'select {quoted} from "{schema}"."{name}"').fetchall()
            out[f"{schema}.{name}"] = sorted(rows, key=repr)
    return out


def _spike_documents(settings: Settings) -> dict[str, dict[Any, Any]]:
    client = connect(settings.mongo_url, app="shopstream-chaos")
    try:
        db = client[settings.mongo_database]
        return {
            name: {
                d["_id"]: {k: v for k, v in d.items() if k not in _UNTIMED} for d in db[name].find()
            }
            for name in _DERIVED
        }
    finally:
        client.close()


def _differing(
    want: dict[str, dict[Any, Any]], got: dict[str, dict[Any, Any]]
) -> dict[str, list[Any]]:
    """The ids (up to 5 per collection) whose documents differ or exist on one side only."""
    out = {}
    for name in want.keys() | got.keys():
        a, b = want.get(name, {}), got.get(name, {})
        ids = sorted((k for k in a.keys() | b.keys() if a.get(k) != b.get(k)), key=str)
        if ids:
            out[name] = ids[:5]
    return out


def _leases(settings: Settings) -> int:
    client = connect(settings.mongo_url, app="shopstream-chaos")
    try:
        return len(list(client[settings.mongo_database][LEASES].find()))
    finally:
        client.close()


def _wipe(settings: Settings) -> None:
    for path in (settings.duckdb_path, Path(f"{settings.duckdb_path}.wal")):
        path.unlink(missing_ok=True)
    client = connect(settings.mongo_url, app="shopstream-chaos")
    try:
        for name in _DERIVED:
            client[settings.mongo_database].drop_collection(name)
    finally:
        client.close()


# ----------------------------------------------------------------------------- Airflow


class _Airflow:
    """The stack's Airflow through its REST API."""

    def __init__(self, settings: Settings) -> None:
        self.base = f"{airflow_url(settings)}/api/v2"
        password = settings.airflow_admin_password.get_secret_value()
        token = httpx.post(
            f"{airflow_url(settings)}/auth/token",
            json={"username": ADMIN_USER, "password": password},
            timeout=30,
        )
        token.raise_for_status()
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.base}{path}", headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            response = httpx.get(f"{self.base}/dags/{dag_id}", headers=self.headers, timeout=30)
            if response.status_code == 200:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{dag_id} never appeared in the stack's Airflow")
            time.sleep(2)

    def trigger(self, dag_id: str, logical: datetime, run_id: str) -> None:
        response = httpx.post(
            f"{self.base}/dags/{dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": logical.isoformat()},
            headers=self.headers,
            timeout=30,
        )
        if response.status_code != 200:
            raise RuntimeError(f"triggering {dag_id} failed: {response.text[:500]}")

    def state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def tries(self, dag_id: str, run_id: str) -> dict[str, tuple[str, int]]:
        found = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")
        return {
            t["task_id"]: (str(t["state"]), int(t["try_number"])) for t in found["task_instances"]
        }


def _dbt_model_processes() -> list[int]:
    """PIDs of running `dbt build` processes (the DAG's build task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if any(w.endswith("/dbt") for w in words[:2]) and "build" in words:
            pids.append(int(entry.name))
    return pids


class _DbtKiller:
    """Kills (SIGKILL) the first `dbt build` to run, a second after it starts."""

    def __init__(self) -> None:
        self.killed: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dbt-killer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            pids = _dbt_model_processes()
            if not pids:
                continue
            time.sleep(1.0)
            pid = pids[0]
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                continue  # it ended first: the next one
            self.killed = " ".join(a.decode(errors="replace") for a in argv if a)[-200:]
            return


# ----------------------------------------------------------------------------- the scenario


def _wait_consumed(settings: Settings, timeout: float = 600) -> None:
    """Until both of the streaming job's queries have read past the topic's end offsets as of
    now (the backfill's last record): "complete" alone is not enough here, since the live load
    moves the watermark past yesterday while the backfill's last batches may still be queued,
    and the undisturbed run would then see fewer orders than the retried one."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_servers, "group.id": "shopstream-chaos-ends"}
    )
    try:
        ends = end_offsets(consumer, settings.orders_topic)
    finally:
        consumer.close()
    store = open_store(settings, app="shopstream-chaos")
    deadline = time.monotonic() + timeout
    try:
        while True:
            lags = [store.status.query_lag(q, settings.orders_topic, ends).lag for q in QUERIES]
            if all(lag == 0 for lag in lags):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stream did not consume the backfill: lags {lags}")
            time.sleep(2)
    finally:
        store.close()


def _wait_complete(settings: Settings, lake_day: date, day: date, timeout: float = 600) -> None:
    _wait_consumed(settings, timeout)
    deadline = time.monotonic() + timeout
    for command in (("warehouse", "complete", "--date"), ("spikes", "complete", "--date")):
        when = lake_day if command[0] == "warehouse" else day
        while (done := _cli(settings, *command, when.isoformat())).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command)} {when}: {done.stdout[-500:]}")
            time.sleep(5)


def airflow_task_killed(settings: Settings, result: Any, report: Report) -> None:
    """See the module's docstring. `result` is the scenario's ChaosResult."""
    lake_day = settings.clock.in_zone("UTC").yesterday()
    day = settings.clock.yesterday()
    zone = ZoneInfo(settings.business_timezone)
    product = int(load_catalog(settings.postgres_url)[0][SPIKE_RANK - 1])
    report(f"backfill: 20 days of orders, a x4 spike of product {product} on {day}")
    _must(
        _cli(
            settings, "simulate", "--backfill-days", "20", "--orders-per-day", "800",
            "--spikes", "0", "--spike", f"{product}:{day}:4", "--signups-per-day", "0",
            "--seed", "7",
        ),
        "the backfill",
    )  # fmt: skip
    _wait_complete(settings, lake_day, day)
    report(f"undisturbed: warehouse load {lake_day}, spikes run {day}")
    _must(_cli(settings, "warehouse", "load", "--date", str(lake_day), "--force"), "the load")
    _must(_cli(settings, "spikes", "run", "--date", str(day), "--force"), "the spike run")
    tables, documents = _warehouse_tables(settings), _spike_documents(settings)
    spikes = documents[DEMAND_SPIKES].get(day.isoformat(), {}).get("spikes", [])
    result.notes.append(
        f"reference: {sum(map(len, tables.values())):,} warehouse rows in {len(tables)} tables; "
        f"{sum(map(len, documents.values()))} spike documents; {len(spikes)} spike(s) on {day} "
        f"(product {product} among them: {any(s['product_id'] == product for s in spikes)})"
    )
    if not any(s["product_id"] == product for s in spikes):  # else: a comparison of empty days
        result.problems.append(f"the undisturbed run missed product {product}'s x4 spike on {day}")
    _wipe(settings)

    airflow = _Airflow(settings)
    runs = {
        "lake_to_warehouse": datetime.combine(
            lake_day + timedelta(days=1), dtime.min, ZoneInfo("UTC")
        ),
        "demand_spike_detection": datetime.combine(day + timedelta(days=1), dtime.min, zone),
    }
    run_id = f"chaos-{int(time.time())}"
    killer = _DbtKiller()
    killer.start()
    began = time.monotonic()
    try:
        for dag_id, logical in runs.items():
            airflow.wait_for_dag(dag_id)
            airflow.trigger(dag_id, logical, run_id)
            report(f"triggered {dag_id} for {logical:%Y-%m-%d} (its interval: the day before)")
        states: dict[str, str] = {}
        deadline = time.monotonic() + 1200
        while time.monotonic() < deadline:
            states = {dag_id: airflow.state(dag_id, run_id) for dag_id in runs}
            if all(s in ("success", "failed") for s in states.values()):
                break
            time.sleep(5)
    finally:
        killer.stop()
    result.recovery_s = round(time.monotonic() - began, 1)
    report(f"runs: {states} after {result.recovery_s:.0f} s; dbt task killed: {killer.killed}")
    for dag_id in runs:
        tries = airflow.tries(dag_id, run_id)
        retried = {t: v for t, v in tries.items() if v[1] > 1}
        result.notes.append(f"{dag_id}: {states.get(dag_id)}; retried tasks: {retried}")
        if states.get(dag_id) != "success":
            result.problems.append(f"{dag_id}'s run ended {states.get(dag_id)}: {tries}")
        want = set(_KILLED[dag_id])
        if dag_id == "lake_to_warehouse" and killer.killed is not None:
            if "build" not in retried:
                result.problems.append(f"dbt killed in the build task, {sorted(retried)} retried")
            want |= {"build"}
        if set(retried) != want:
            result.problems.append(f"{dag_id}: retried {sorted(retried)}, killed {sorted(want)}")
        for task, (state, attempt) in retried.items():
            if (state, attempt) != ("success", 2):
                result.problems.append(f"{dag_id}.{task}: {state} on try {attempt}, not 2")
    if killer.killed is None:
        result.problems.append("no dbt build was seen running to be killed")

    after = _warehouse_tables(settings)
    if differ := sorted(t for t in tables.keys() | after.keys() if tables.get(t) != after.get(t)):
        result.problems.append(f"the warehouse differs from the undisturbed run's in {differ}")
    if changed := _differing(documents, _spike_documents(settings)):
        result.problems.append(f"the spike documents differ from the undisturbed run's: {changed}")
    if held := _leases(settings):
        result.problems.append(f"{held} lease(s) left behind")
    loads = _cli(settings, "warehouse", "loads", "--limit", "3")
    result.notes.append("audit: " + " | ".join(loads.stdout.split("\n")[:5]))
