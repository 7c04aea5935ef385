"""`shopstream chaos <scenario>` (`make chaos`): faults under load, each ending with an
independent reconciliation.

Every scenario runs on a throw-away stack of its own (the streaming job included) while orders
arrive at `--rate` (200/s by default, open loop: a slow answer does not slow the schedule) or
from 32 closed-loop clients. After the fault and the recovery the load stops and the books are
checked from the sources, not from the pipeline's own counters:

- the topic, read whole: every order the API acknowledged (202) is there (`lost` counts the
  ones that are not), and how many acknowledged orders have more than one record (`doubled`);
- MongoDB holds exactly the order ids of the topic, each once (`_id` is the order id);
- the lake holds every record of the topic exactly once, by (partition, offset);
- `rollups check`: every rollup, customer set and history equals a recomputation;
- the streaming job's driver is the same process as before the fault (no restart).

Scenarios: `broker-leader` (kill -9 the broker leading most partitions of a 3-broker cluster,
back after 30 s), `two-brokers` (kill -9 two of three for 15 s: 503 within 5 s, no 202), and
`broker-stopped` (the only broker of a 1-broker stack stopped for 12 s under 32 concurrent
clients: every answer within 5 s), `store-killed` (kill -9 the MongoDB role for 20 s: the job
waits or is restarted, exact either way; the dashboard's Overview, open in one headless
Chromium tab throughout and never reloaded, shows the store unavailable meanwhile and its KPIs
again within 60 s of the restart), `postgres-restarted` (PostgreSQL stopped for 10 s: the
API keeps answering from its cache of known ids; the job reconnects) and `airflow-task-killed`
(the stack's Airflow runs yesterday's warehouse load and spike detection with tasks killed
mid-way; the scheduler's retries must leave what an undisturbed run leaves:
`chaos_airflow`). Results: JSON (`--output`) and the table of docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pyarrow.parquet as pq
from confluent_kafka.admin import AdminClient

from shopstream.config import Settings
from shopstream.failpoints import ENV, ONCE_ENV
from shopstream.messaging.cluster import cluster_health
from shopstream.messaging.tail import tail
from shopstream.stack.supervisor import Supervisor
from shopstream.store.errors import StoreUnavailableError
from shopstream.store.ferretdb import open_store
from shopstream.store.protocols import Store
from shopstream.streaming.committed import lake_files
from shopstream_bench.chaos_airflow import FAILPOINTS as AIRFLOW_FAILPOINTS
from shopstream_bench.chaos_airflow import airflow_task_killed
from shopstream_bench.chaos_airflow import stack_settings as airflow_settings
from shopstream_bench.chaos_dashboard import STACK_SETTINGS as DASHBOARD_SETTINGS
from shopstream_bench.chaos_dashboard import DashboardWatch, Sample
from shopstream_bench.isolated import CUSTOMERS, PRODUCTS, isolated_stack
from shopstream_bench.machine import describe_machine
from shopstream_bench.results import percentile

__all__ = ["SCENARIOS", "ChaosResult", "run_chaos"]

Report = Callable[[str], None]


# ----------------------------------------------------------------------------- load


@dataclass
class Answer:
    sent: float  # time.monotonic()
    status: int  # 0: no answer (connection error)
    seconds: float
    order_id: str


class Load:
    """Orders in a thread of its own: the simulator's way at `rate` per second (a
    `POST /orders` of `rate / 10` orders every 0.1 s, open loop: a slow answer does not slow the
    schedule), or `clients` closed-loop clients posting one order each (`POST /order`) when
    their last answer came. Each order's outcome is recorded as 202 (accepted) or 503."""

    TICK_S = 0.1

    def __init__(self, settings: Settings, rate: float = 200.0, clients: int = 0) -> None:
        self.settings = settings
        self.rate = rate
        self.clients = clients
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._rng = random.Random(20)
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def between(self, start: float, end: float) -> list[Answer]:
        return [a for a in list(self.answers) if start <= a.sent < end]

    def acked(self) -> set[str]:
        return {a.order_id for a in list(self.answers) if a.status == 202}

    def _order(self) -> dict[str, Any]:
        rng = self._rng
        return {
            "order_id": str(uuid.uuid4()),
            "customer_id": rng.randint(1, CUSTOMERS),
            "items": [
                {"product_id": rng.randint(1, PRODUCTS), "quantity": rng.randint(1, 3)}
                for _ in range(rng.randint(1, 3))
            ],
        }

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _post_one(self, client: httpx.AsyncClient) -> int:
        order = self._order()
        sent = time.monotonic()
        try:
            status = (await client.post("/order", json=order)).status_code
        except httpx.HTTPError:
            status = 0
        self.answers.append(Answer(sent, status, time.monotonic() - sent, order["order_id"]))
        return status

    async def _post_batch(self, client: httpx.AsyncClient, count: int) -> None:
        orders = [self._order() for _ in range(count)]
        sent = time.monotonic()
        try:
            resp = await client.post("/orders", json={"orders": orders})
            results = resp.json().get("results", []) if resp.status_code != 429 else []
        except (httpx.HTTPError, ValueError):
            results = []
        seconds = time.monotonic() - sent
        outcome = {r.get("order_id"): r.get("status") for r in results}
        for order in orders:
            status = outcome.get(order["order_id"])
            code = 202 if status == "accepted" else 503 if status == "unavailable" else 0
            self.answers.append(Answer(sent, code, seconds, order["order_id"]))

    async def _main(self) -> None:
        key = self.settings.api_key_list[0]
        # Enough connections that a request never waits for one while others wait 5 s for
        # their answer: the latencies measured are the API's.
        limits = httpx.Limits(max_connections=max(200, self.clients))
        async with httpx.AsyncClient(
            base_url=self.settings.api_url,
            headers={"X-API-Key": key},
            timeout=30,
            limits=limits,
        ) as client:
            if self.clients:
                await asyncio.gather(*(self._closed_loop(client) for _ in range(self.clients)))
            else:
                await self._open_loop(client)

    async def _closed_loop(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            if await self._post_one(client) != 202:
                await asyncio.sleep(0.2)  # what Retry-After asks, roughly

    async def _open_loop(self, client: httpx.AsyncClient) -> None:
        began, sent = time.monotonic(), 0
        tasks: set[asyncio.Task[None]] = set()
        while not self._stop.is_set():
            owed = int((time.monotonic() - began) * self.rate) - sent
            if owed > 0:
                task = asyncio.create_task(self._post_batch(client, owed))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += owed
            await asyncio.sleep(self.TICK_S)
        if tasks:
            await asyncio.gather(*tasks)


# ----------------------------------------------------------------------------- results


@dataclass
class ChaosResult:
    scenario: str
    load: str
    acked: int = 0
    lost: int = 0  # acknowledged, not in the topic
    doubled: int = 0  # acknowledged, more than one record in the topic
    mongo_exact: bool = False  # MongoDB holds exactly the topic's order ids
    lake_exact: bool = False  # every record of the topic once, by coordinates
    rollups_ok: bool = False
    stream_restarts: int = 0
    max_503_s: float | None = None
    p99_202_during_s: float | None = None  # accepted orders sent during the fault
    answers_during: dict[str, int] = field(default_factory=dict)  # status -> count
    recovery_s: float | None = None
    # Scenarios watching the dashboard: the store held down (killed, supervisord's own restart
    # stopped) to the page's "not answering" error, and the restart to the error gone and the
    # KPIs shown again (same tab, never reloaded).
    dashboard_unavailable_after_s: float | None = None
    dashboard_recovered_after_s: float | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def _driver_pid(settings: Settings) -> int | None:
    try:
        return int(json.loads(settings.stream_ready_path.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _topic_records(settings: Settings) -> tuple[Counter[str], int]:
    """Order id -> records in the topic, and the number of records."""
    counts: Counter[str] = Counter()
    records = 0
    for rec in tail(settings.kafka_servers, settings.orders_topic, True, idle_timeout=5.0):
        records += 1
        try:
            oid = json.loads(rec.value or b"{}").get("order_id")
        except ValueError:
            continue
        if isinstance(oid, str):
            counts[oid] += 1
    return counts, records


def _lake_coordinates(settings: Settings) -> list[tuple[int, int]]:
    coords: list[tuple[int, int]] = []
    for uri in lake_files(f"{settings.lake}/orders"):
        table = pq.read_table(uri.removeprefix("file:"), columns=["partition", "offset"])
        parts, offsets = table.column("partition").to_pylist(), table.column("offset").to_pylist()
        coords += zip(parts, offsets, strict=True)
    return coords


def _wait(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)
    return True


def reconcile(settings: Settings, load: Load, result: ChaosResult, report: Report) -> None:
    """The books, from the sources (see the module's docstring)."""
    acked = load.acked()
    counts, records = _topic_records(settings)
    result.acked = len(acked)
    result.lost = len(acked - set(counts))
    result.doubled = sum(1 for oid in acked if counts.get(oid, 0) > 1)
    if result.lost:
        result.problems.append(f"{result.lost} acknowledged orders are not in the topic")
    if result.doubled:
        result.notes.append(f"{result.doubled} acknowledged orders have 2+ records in the topic")
    report(f"topic: {records} records, {len(counts)} orders; acked {len(acked)}")
    store = open_store(settings, app="shopstream-chaos")
    try:
        topic_ids = set(counts)
        result.mongo_exact = _wait(lambda: set(store.orders.inserting_batches()) == topic_ids, 300)
        if not result.mongo_exact:
            stored = set(store.orders.inserting_batches())
            result.problems.append(
                f"MongoDB: {len(topic_ids - stored)} orders missing, "
                f"{len(stored - topic_ids)} not in the topic"
            )
        result.lake_exact = _wait(lambda: len(_lake_coordinates(settings)) >= records, 180)
        coords = _lake_coordinates(settings)
        result.lake_exact = len(coords) == len(set(coords)) == records
        if not result.lake_exact:
            result.problems.append(
                f"lake: {len(coords)} rows, {len(set(coords))} distinct, topic {records}"
            )
        wrong = store.rollups.check(ZoneInfo(settings.business_timezone), settings.postgres_url)
        result.rollups_ok = not wrong
        if wrong:
            result.problems.append(f"rollups check: {len(wrong)} differ, e.g. {wrong[:2]}")
    finally:
        store.close()


# ----------------------------------------------------------------------------- scenarios


def _leader_of_most(settings: Settings) -> int:
    meta = AdminClient({"bootstrap.servers": settings.kafka_servers}).list_topics(timeout=10)
    leaders = Counter(p.leader for p in meta.topics[settings.orders_topic].partitions.values())
    return leaders.most_common(1)[0][0]


def _latencies(answers: list[Answer], status: int) -> list[float]:
    return sorted(a.seconds for a in answers if a.status == status)


def _broker_leader(settings: Settings, load: Load, result: ChaosResult, report: Report) -> None:
    sup = Supervisor(settings.data_path)
    victim = _leader_of_most(settings)
    report(f"kill -9 kafka-{victim} (leads most partitions); back in 30 s")
    killed = time.monotonic()
    sup.kill_program(f"kafka-{victim}")
    time.sleep(30)
    during = load.between(killed, time.monotonic())
    sup.start_program(f"kafka-{victim}")
    back = time.monotonic()
    in_sync = _wait(lambda: not cluster_health(settings.kafka_servers).under_replicated, 180)
    result.recovery_s = round(time.monotonic() - back, 1) if in_sync else None
    result.answers_during = {str(k): v for k, v in Counter(a.status for a in during).items()}
    ok = _latencies(during, 202)
    result.p99_202_during_s = round(percentile(ok, 99), 3) if ok else None
    result.notes.append(f"max 202 during fail-over {ok[-1]:.2f} s" if ok else "no 202")
    if any(a.status != 202 for a in during):
        result.problems.append(
            f"answers other than 202 with one broker down: {result.answers_during}"
        )
    if not in_sync:
        result.problems.append("replicas not back in sync within 180 s of the restart")


def _two_brokers(settings: Settings, load: Load, result: ChaosResult, report: Report) -> None:
    sup = Supervisor(settings.data_path)
    first = _leader_of_most(settings)
    second = next(b for b in (1, 2, 3) if b != first)
    report(f"kill -9 kafka-{first} and kafka-{second}; back in 15 s")
    sup.kill_program(f"kafka-{first}")
    sup.kill_program(f"kafka-{second}")
    killed = time.monotonic()  # both dead now (kill_program waits for supervisord to see it)
    time.sleep(15)
    sup.start_program(f"kafka-{first}")
    sup.start_program(f"kafka-{second}")
    back = time.monotonic()
    recovered = _wait(lambda: any(a.status == 202 for a in load.between(back, 1e12)), 120)
    if recovered:
        first_202 = min(a.sent + a.seconds for a in load.between(back, 1e12) if a.status == 202)
        result.recovery_s = round(first_202 - back, 1)
    else:
        result.problems.append("no 202 within 120 s of the brokers' restart")
    # Sent after both died and answered before they were started again: no acknowledgement.
    # (One sent in the last 5 s before the restart may rightly get its 202 after it.)
    during = [a for a in load.between(killed, back) if a.sent + a.seconds < back]
    result.answers_during = {str(k): v for k, v in Counter(a.status for a in during).items()}
    refused = _latencies(during, 503)
    result.max_503_s = round(refused[-1], 3) if refused else None
    if any(a.status == 202 for a in during):
        result.problems.append("202 without the in-sync quorum")
    if not refused:
        result.problems.append("no 503 while two brokers were down")
    elif refused[-1] > settings.produce_timeout_s:
        result.problems.append(f"a 503 took {refused[-1]:.2f} s (> {settings.produce_timeout_s})")


def _broker_stopped(settings: Settings, load: Load, result: ChaosResult, report: Report) -> None:
    sup = Supervisor(settings.data_path)
    report("stop the broker for 12 s under 32 concurrent clients")
    stopped = time.monotonic()
    sup.stop_program("kafka")
    time.sleep(12)
    sup.start_program("kafka")
    back = time.monotonic()
    recovered = _wait(lambda: any(a.status == 202 for a in load.between(back, 1e12)), 120)
    if recovered:
        first_202 = min(a.sent + a.seconds for a in load.between(back, 1e12) if a.status == 202)
        result.recovery_s = round(first_202 - back, 1)
    during = load.between(stopped, back)
    result.answers_during = {str(k): v for k, v in Counter(a.status for a in during).items()}
    refused = _latencies(during, 503)
    result.max_503_s = round(refused[-1], 3) if refused else None
    if refused:
        result.notes.append(
            f"503 latency p50 {statistics.median(refused):.2f} s, max {refused[-1]:.2f} s "
            f"({len(refused)} answers)"
        )
    slow = [a for a in during if a.seconds > settings.produce_timeout_s]
    if slow:
        result.problems.append(
            f"{len(slow)} answers took over {settings.produce_timeout_s} s "
            f"(max {max(a.seconds for a in slow):.2f} s)"
        )
    if not refused:
        result.problems.append("no 503 while the broker was stopped")
    if not recovered:
        result.problems.append("no 202 within 120 s of the broker's restart")


def _store_killed(settings: Settings, load: Load, result: ChaosResult, report: Report) -> None:
    """The MongoDB role killed (-9) for 20 s: the API does not need it (202s go on); the job
    retries its batch or is restarted by supervisord, and the books must still balance.

    The dashboard's Overview is open meanwhile in one headless Chromium tab, opened once before
    the kill and only read after (never reloaded): it must show the store's "not answering"
    error while the store is down, then its KPIs without the error within 60 s of the restart,
    and keep them for two more refreshes.
    """
    watch = DashboardWatch(settings.dashboard_local_url)
    report(f"dashboard: Overview open at {watch.url}, read every {watch.interval_s} s")
    watch.start()  # its failure to load is judged with the rest
    try:
        down, back = _program_down(settings, load, result, report, "mongo", 20, kill=True)
        # `back`: supervisord asked to start it (the store may answer before startsecs end)
        until = back + 60  # the page's KPIs without the error, or give up
        _wait(lambda: watch.first(back, _healthy) is not None, until - time.monotonic())
        time.sleep(2 * settings.dashboard_refresh_s)  # two more refreshes: does it stay so?
    finally:
        watch.stop()
    _judge_dashboard(watch, down, back, result)


def _healthy(sample: Sample) -> bool:
    return sample.healthy


def _judge_dashboard(watch: DashboardWatch, down: float, back: float, result: ChaosResult) -> None:
    if watch.failure is not None:
        result.problems.append(f"dashboard: reading the page failed: {watch.failure}")
    error = watch.first(down, lambda s: s.error)
    if error is None or error.at > back:
        result.problems.append("dashboard: the page never showed the store unavailable")
    else:
        result.dashboard_unavailable_after_s = round(error.at - down, 1)
    healthy = watch.first(back, _healthy)
    if healthy is None or healthy.at > back + 60:
        result.problems.append("dashboard: no KPIs without the error within 60 s of the restart")
    else:
        result.dashboard_recovered_after_s = round(healthy.at - back, 1)
        if watch.first(healthy.at, lambda s: s.error) is not None:
            result.problems.append("dashboard: the error came back after the recovery")
    if watch.reloaded:
        result.problems.append(f"dashboard: the page reloaded ({watch.loads} loads)")
    result.notes.append(
        f"dashboard: {len(watch.samples)} reads of the Overview every {watch.interval_s} s, "
        f"one tab, {watch.loads} load(s); from the store held down (restart at "
        f"+{back - down:.1f} s): " + watch.timeline(down)
    )


def _postgres_restarted(
    settings: Settings, load: Load, result: ChaosResult, report: Report
) -> None:
    """PostgreSQL stopped ("fast" shutdown) for 10 s and started: the API answers from its
    cache of known ids; the job's dimension refresh and the histories reconnect."""
    _program_down(settings, load, result, report, "postgres", 10, kill=False)


def _program_down(
    settings: Settings,
    load: Load,
    result: ChaosResult,
    report: Report,
    program: str,
    seconds: float,
    kill: bool,
) -> tuple[float, float]:
    """Stops `program` for `seconds` and judges the answers meanwhile and the recovery;
    returns when it was down for good and when it was asked to start again
    (time.monotonic()). A kill is followed by stopping the restart supervisord begins at once,
    which can take a while on a loaded machine; `seconds` count from then."""
    sup = Supervisor(settings.data_path)
    report(f"{'kill -9' if kill else 'stop'} {program}; back in {seconds:.0f} s")
    began = time.monotonic()
    if kill:
        sup.kill_program(program)
    else:
        sup.stop_program(program)
    down = time.monotonic()
    if down - began > 5:
        result.notes.append(f"{program} held down {down - began:.1f} s after the kill/stop began")
    time.sleep(seconds)
    restarted = time.monotonic()  # asked; supervisord answers once it has run for 2 s
    sup.start_program(program)
    back = time.monotonic()
    during = load.between(began, back)
    result.answers_during = {str(k): v for k, v in Counter(a.status for a in during).items()}
    ok = _latencies(during, 202)
    result.p99_202_during_s = round(percentile(ok, 99), 3) if ok else None
    refused = _latencies(during, 503)
    result.max_503_s = round(refused[-1], 3) if refused else None
    slow = [a for a in during if a.seconds > settings.produce_timeout_s]
    if slow:
        result.problems.append(f"{len(slow)} answers took over {settings.produce_timeout_s} s")
    # Recovered: an order accepted after the restart is in MongoDB.
    store = open_store(settings, app="shopstream-chaos")
    try:
        stored = _wait(lambda: _stored_after(store, load, back + 1), 300)
        result.recovery_s = round(time.monotonic() - back, 1) if stored else None
        if not stored:
            result.problems.append(f"no order sent after {program}'s restart stored in 300 s")
    finally:
        store.close()
    return down, restarted


def _airflow_task_killed(
    settings: Settings, load: Load, result: ChaosResult, report: Report
) -> None:
    """Tasks of both DAGs killed mid-way; the retries must equal an undisturbed run
    (`chaos_airflow`)."""
    airflow_task_killed(settings, result, report)


def _stored_after(store: Store, load: Load, after: float) -> bool:
    """Whether the first order accepted after `after` is in MongoDB already."""
    accepted = [a.order_id for a in load.between(after, 1e12) if a.status == 202][:1]
    if not accepted:
        return False
    try:
        return store.orders.orders(accepted)[0] is not None
    except StoreUnavailableError:  # the store itself may still be coming back
        return False


@dataclass(frozen=True)
class Scenario:
    run: Callable[[Settings, Load, ChaosResult, Report], None]
    brokers: int
    clients: int  # 0: open loop at the rate
    summary: str
    dashboard: bool = False  # the stack runs the dashboard (the scenario watches it)
    stack: Callable[[Settings], dict[str, Any]] | None = None  # more settings of its stack
    failpoints: str = ""  # armed in the stack's processes, each firing once


SCENARIOS = {
    "broker-leader": Scenario(
        _broker_leader, 3, 0, "kill -9 the broker leading most partitions, back after 30 s"
    ),
    "two-brokers": Scenario(_two_brokers, 3, 0, "kill -9 two of three brokers for 15 s"),
    "broker-stopped": Scenario(
        _broker_stopped, 1, 32, "the only broker stopped for 12 s, 32 concurrent clients"
    ),
    "store-killed": Scenario(
        _store_killed, 1, 0, "kill -9 the MongoDB role, back after 20 s", dashboard=True
    ),
    "postgres-restarted": Scenario(
        _postgres_restarted, 1, 0, "PostgreSQL stopped for 10 s, then started"
    ),
    "airflow-task-killed": Scenario(
        _airflow_task_killed,
        1,
        0,
        "Airflow's load task killed in its transaction, a dbt task and the spike task "
        "holding its lease killed; retried by the scheduler",
        stack=airflow_settings,
        failpoints=AIRFLOW_FAILPOINTS,
    ),
}


@contextlib.contextmanager
def _removed(path: Path) -> Iterator[Path]:
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_scenario(
    base: Settings, name: str, rate: float, report: Report, warmup_s: float = 15.0
) -> ChaosResult:
    scenario = SCENARIOS[name]
    load_text = f"{scenario.clients} clients" if scenario.clients else f"{rate:.0f} orders/s"
    result = ChaosResult(name, load_text)
    once = Path(tempfile.mkdtemp(prefix="shopstream-failpoints-"))  # each fires once
    env = {ENV: scenario.failpoints, ONCE_ENV: str(once)} if scenario.failpoints else {}
    with (
        _removed(once),
        isolated_stack(
            base,
            report,
            env=env,
            kafka_brokers=scenario.brokers,
            stream_enabled=True,
            stream_trigger_s=0.5,
            **(DASHBOARD_SETTINGS if scenario.dashboard else {"dashboard_enabled": False}),
            **(scenario.stack(base) if scenario.stack else {}),
        ) as settings,
    ):
        load = Load(settings, rate=rate, clients=scenario.clients)
        pid = _driver_pid(settings)
        load.start()
        try:
            time.sleep(warmup_s)
            scenario.run(settings, load, result, report)
            time.sleep(10)  # orders after the recovery too
        finally:
            load.stop()
        report(f"load stopped: {len(load.answers)} answers; reconciling")
        reconcile(settings, load, result, report)
        now = _driver_pid(settings)
        result.stream_restarts = 0 if now == pid else 1
        if now != pid:
            result.notes.append(f"the streaming job restarted ({pid} -> {now})")
    report(f"{name}: {'PASSED' if result.passed else 'FAILED'} {result.problems or ''}")
    return result


def run_chaos(
    base: Settings, names: list[str], rate: float, output: Path, report: Report
) -> list[ChaosResult]:
    results = []
    for name in names:
        results.append(run_scenario(base, name, rate, report))
        doc = {
            "benchmark": "chaos",
            "machine": describe_machine(),
            "rate": rate,
            "results": [{**asdict(r), "passed": r.passed} for r in results],
        }
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(doc, indent=2) + "\n")
    return results
