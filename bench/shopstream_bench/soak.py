"""`shopstream bench soak`: the streaming job under the demo's own workload, for a long time.

Either an isolated stack of its own with the simulator's traffic, or `--attach`ed to a running
stack (e.g. `make demo`) without adding load. On its own stack it first sends the demo's
backfill (`--backfill-days` of 3,000 orders a day through `POST /orders`) and times how long
the job takes to commit all of it after the last 202, then runs the live simulator (sign-ups
included) at `--rate`. Every `--interval` it samples:

- the driver JVM's heap after a full GC (`jcmd <pid> GC.run`, then `GC.heap_info`; needs a
  JDK's jcmd, else the sample is left out) and the JVM's RSS;
- the RSS of every Python process of the job (the driver and Spark's Python workers);
- the micro-batches of the interval from the ledger: how many, their median and p99 duration;
- end-to-end latency: one order per second posted to `POST /order`, polled by `_id` in MongoDB;
- the job's PID (a change is a restart).

The verdict compares the last `--compare` minutes with the first ones (after `--settle`):
flat when heap, Python RSS and median batch time are within 20% and the job never restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import shutil
import statistics
import subprocess
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from shopstream.config import Settings
from shopstream.store.ferretdb import open_store
from shopstream.store.protocols import Store
from shopstream_bench.isolated import isolated_stack, service_pids
from shopstream_bench.jobstate import Checkpoint, KafkaEnds
from shopstream_bench.machine import describe_machine
from shopstream_bench.results import percentile
from shopstream_bench.watch import VisibilityProbe

__all__ = ["SoakOptions", "run_soak", "verdict"]

TOLERANCE = 0.20


@dataclass(frozen=True)
class SoakOptions:
    rate: float = 200.0
    duration_s: float = 1800.0
    interval_s: float = 60.0
    attach: bool = False
    backfill_days: int = 3
    settle_s: float = 120.0  # start-up (JIT, first loads) left out of the comparison
    compare_s: float = 600.0


@dataclass
class Sample:
    at: str
    elapsed_s: float
    stream_pid: int | None
    heap_after_gc_mb: float | None
    jvm_rss_mb: float | None
    python_rss_mb: float
    python_processes: int
    batches: int
    batch_p50_s: float | None
    batch_p99_s: float | None
    records: int
    e2e_p50_s: float | None
    e2e_p99_s: float | None
    e2e_n: int
    extra: dict[str, Any] = field(default_factory=dict)


def _children(pid: int) -> list[int]:
    found, todo = [], [pid]
    table: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                table.setdefault(ppid, []).append(int(entry.name))
    while todo:
        for child in table.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def heap_after_gc_mb(jvm_pid: int) -> float | None:
    """Used heap right after a full collection, in MB (None without jcmd)."""
    jcmd = shutil.which("jcmd")
    if jcmd is None:
        return None
    subprocess.run([jcmd, str(jvm_pid), "GC.run"], capture_output=True, timeout=60, check=False)
    info = subprocess.run(
        [jcmd, str(jvm_pid), "GC.heap_info"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    used = re.search(r"heap\s+total \d+K, used (\d+)K", info)
    return int(used.group(1)) / 1024 if used else None


class Prober(threading.Thread):
    """Posts one order per second and hands it to a `VisibilityProbe` on its 202."""

    def __init__(self, settings: Settings, api_key: str, probe: VisibilityProbe) -> None:
        super().__init__(name="soak-prober", daemon=True)
        self.settings, self.api_key, self.probe = settings, api_key, probe
        self.halt = threading.Event()
        self.errors = 0
        self.rng = random.Random(3)

    def run(self) -> None:
        headers = {"X-API-Key": self.api_key}
        with httpx.Client(base_url=self.settings.api_url, headers=headers, timeout=10) as client:
            while not self.halt.wait(1.0):
                order_id = str(uuid.uuid4())
                order = {
                    "order_id": order_id,
                    "customer_id": self.rng.randint(1, 10_000),
                    "items": [{"product_id": self.rng.randint(1, 1_000), "quantity": 1}],
                }
                try:
                    if client.post("/order", json=order).status_code == 202:
                        self.probe.offer(order_id, time.time())
                    else:
                        self.errors += 1
                except httpx.HTTPError:
                    self.errors += 1


def _sample(
    settings: Settings, store: Store, probe: VisibilityProbe, began: float, since: float
) -> Sample:
    now = time.time()
    pid = _stream_pid(settings)
    jvm = next((c for c in _children(pid) if _comm(c) == "java"), None) if pid else None
    pythons = [pid] if pid else []
    if jvm is not None:
        pythons += [c for c in _children(jvm) if _comm(c).startswith("python")]
    # A scan of the ledger (at most a few thousand small documents), once per interval.
    batches = store.status.finished_batches(since=datetime.fromtimestamp(since, UTC))
    durations = [b.duration_s for b in batches]
    e2e = [p.found - p.acked for p in probe.between(since, now)]
    return Sample(
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        elapsed_s=round(now - began, 1),
        stream_pid=pid,
        heap_after_gc_mb=_round(heap_after_gc_mb(jvm) if jvm else None),
        jvm_rss_mb=_round(rss_mb(jvm) if jvm else None),
        python_rss_mb=round(sum(rss_mb(p) for p in pythons), 1),
        python_processes=len(pythons),
        batches=len(batches),
        batch_p50_s=_round(statistics.median(durations) if durations else None, 3),
        batch_p99_s=_round(percentile(durations, 99) if durations else None, 3),
        records=sum(b.records for b in batches),
        e2e_p50_s=_round(percentile(e2e, 50) if e2e else None, 3),
        e2e_p99_s=_round(percentile(e2e, 99) if e2e else None, 3),
        e2e_n=len(e2e),
    )


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _stream_pid(settings: Settings) -> int | None:
    with contextlib.suppress(OSError, ValueError, KeyError):
        return int(json.loads(settings.stream_ready_path.read_text())["pid"])
    return service_pids(settings).get("stream")


def verdict(samples: list[Sample], opts: SoakOptions) -> dict[str, Any]:
    """First vs last `compare_s` (after `settle_s`): each measure within TOLERANCE."""
    early = [s for s in samples if opts.settle_s <= s.elapsed_s <= opts.settle_s + opts.compare_s]
    late = [s for s in samples if s.elapsed_s >= samples[-1].elapsed_s - opts.compare_s]
    out: dict[str, Any] = {"restarts": len({s.stream_pid for s in samples if s.stream_pid}) - 1}
    flat = out["restarts"] == 0
    for name in ("heap_after_gc_mb", "python_rss_mb", "batch_p50_s", "e2e_p50_s"):
        first = [v for s in early if (v := getattr(s, name)) is not None]
        last = [v for s in late if (v := getattr(s, name)) is not None]
        if not first or not last:
            out[name] = {"first": None, "last": None, "change": None}
            continue
        a, b = statistics.median(first), statistics.median(last)
        change = (b - a) / a if a else 0.0
        out[name] = {"first": round(a, 3), "last": round(b, 3), "change": round(change, 3)}
        if name != "e2e_p50_s":  # latency is reported; the pass is heap, RSS, batches
            flat = flat and change <= TOLERANCE
    out["flat"] = flat
    return out


def _load(settings: Settings, rate: float, duration: float, api_key: str) -> threading.Thread:
    """The demo's live workload (the simulator, with sign-ups) in a thread of its own."""
    from shopstream.cli.sim import SimOptions, run_simulation

    opts = SimOptions(rate=rate, duration=duration, show_progress=False)
    truth = settings.data_path / "spikes_truth_soak.json"
    thread = threading.Thread(
        target=lambda: asyncio.run(run_simulation(settings, opts, truth, api_key)),
        name="soak-load",
        daemon=True,
    )
    thread.start()
    return thread


def _backfill(settings: Settings, days: int, api_key: str) -> dict[str, Any]:
    """The demo's history through the API, then the time until the job has committed it."""
    from shopstream.cli.sim import SimOptions, run_simulation

    opts = SimOptions(backfill_days=days, orders_per_day=3000, show_progress=False)
    truth = settings.data_path / "spikes_truth_soak.json"
    began = time.time()
    stats = asyncio.run(run_simulation(settings, opts, truth, api_key))
    last_202 = time.time()
    kafka, enrich = KafkaEnds(settings), Checkpoint(settings, "enrich")
    try:
        produced = kafka.end_offset()
        while enrich.committed_offset() < produced and time.time() - last_202 < 600:
            time.sleep(0.05)
        caught_up = time.time()
    finally:
        kafka.close()
    return {
        "days": days,
        "orders": stats.accepted,
        "send_s": round(last_202 - began, 2),
        "catch_up_s": round(caught_up - last_202, 2),
        "committed_all": enrich.committed_offset() >= produced,
    }


def _run(settings: Settings, opts: SoakOptions, report: Any) -> dict[str, Any]:
    api_key = settings.api_key_list[0]
    backfill = None
    if not opts.attach and opts.backfill_days:
        backfill = _backfill(settings, opts.backfill_days, api_key)
        report(
            f"backfill: {backfill['orders']:,} orders sent in {backfill['send_s']} s, "
            f"committed by the job {backfill['catch_up_s']} s after the last 202"
        )
    store = open_store(settings, app="shopstream-bench")
    probe = VisibilityProbe(settings, per_s=1.0, give_up_s=300)
    prober = Prober(settings, api_key, probe)
    probe.start()
    prober.start()
    load = None if opts.attach else _load(settings, opts.rate, opts.duration_s, api_key)
    began = last = time.time()
    samples: list[Sample] = []
    try:
        while time.time() - began < opts.duration_s:
            time.sleep(max(0.0, last + opts.interval_s - time.time()))
            sample = _sample(settings, store, probe, began, last)
            last = time.time() - 0.001
            samples.append(sample)
            report(
                f"{sample.elapsed_s / 60:5.1f} min  heap {sample.heap_after_gc_mb} MB  "
                f"py {sample.python_rss_mb} MB ({sample.python_processes})  "
                f"batches {sample.batches} p50 {sample.batch_p50_s}s  "
                f"e2e p50 {sample.e2e_p50_s}s p99 {sample.e2e_p99_s}s"
            )
    finally:
        prober.halt.set()
        prober.join(5)
        probe.stop()
        store.close()
    if load is not None:
        load.join(timeout=60)
    return {
        "benchmark": "soak",
        "started_at": (datetime.now(UTC) - timedelta(seconds=time.time() - began)).isoformat(),
        "machine": describe_machine(),
        "options": asdict(opts),
        "samples": [asdict(s) for s in samples],
        "backfill": backfill,
        "probe": {"errors": prober.errors, "gave_up": probe.gave_up},
        "verdict": verdict(samples, opts) if samples else {},
    }


def run_soak(base: Settings, opts: SoakOptions, report: Any) -> dict[str, Any]:
    if opts.attach:
        return _run(base, opts, report)
    with isolated_stack(
        base, report, stream_enabled=True, stream_trigger_s=base.stream_trigger_s
    ) as s:
        return _run(s, opts, report)
