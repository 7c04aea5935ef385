"""Observers that run beside the load: the job's lag, its batches, CPU, and order visibility.

- `Watch` samples, every `interval` seconds, what Kafka holds and what each query has committed
  (lag = produced - committed), and keeps every batch it sees in the checkpoints (Spark deletes
  old ones as it goes).
- `CpuTree` reads the CPU time of whole process trees (the `stream` service is a Python driver
  whose children are the Spark JVM and its Python workers) and of the machine.
- `VisibilityProbe` polls MongoDB by `_id` for a small sample of acknowledged orders until each
  is readable: a direct measurement, to check the ledger-based estimate against.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shopstream.config import Settings
from shopstream.store.ferretdb import open_store
from shopstream_bench.jobstate import Checkpoint, CheckpointBatch, KafkaEnds

__all__ = ["CpuTree", "LagSample", "Probe", "VisibilityProbe", "Watch", "cores_between"]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class LagSample:
    at: float
    produced: int
    enrich_done: int
    lake_done: int

    @property
    def enrich_lag(self) -> int:
        return max(0, self.produced - self.enrich_done)

    @property
    def lake_lag(self) -> int:
        return max(0, self.produced - self.lake_done)


class Watch(threading.Thread):
    """Lag samples and checkpoint batches of both queries, until `stop()`."""

    def __init__(self, settings: Settings, interval: float = 0.5) -> None:
        super().__init__(name="bench-watch", daemon=True)
        self.interval = interval
        self.kafka = KafkaEnds(settings)
        self.enrich, self.lake = Checkpoint(settings, "enrich"), Checkpoint(settings, "lake")
        self.samples: list[LagSample] = []
        self.enrich_batches: dict[int, CheckpointBatch] = {}
        self.lake_batches: dict[int, CheckpointBatch] = {}
        self.errors: list[str] = []
        self._halt = threading.Event()

    def sample(self) -> LagSample:
        produced = self.kafka.end_offset()
        self.enrich.poll(self.enrich_batches)
        self.lake.poll(self.lake_batches)
        return LagSample(
            time.time(), produced, self.enrich.committed_offset(), self.lake.committed_offset()
        )

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append(self.sample())
            except Exception as exc:  # keep watching; a gap in the samples is visible
                if len(self.errors) < 5:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
        self.kafka.close()


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / _TICKS


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


class CpuTree:
    """CPU seconds used so far by named process trees, and by the machine as a whole."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots

    def read(self) -> dict[str, float]:
        stats: dict[int, tuple[int, float]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
                stats[int(entry.name)] = st
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        used = {name: self._tree(root, stats, children) for name, root in self.roots.items()}
        used["machine"] = _machine_busy()
        return used

    @staticmethod
    def _tree(
        root: int, stats: dict[int, tuple[int, float]], children: dict[int, list[int]]
    ) -> float:
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            total += stats[pid][1] if pid in stats else 0.0
            todo += children.get(pid, [])
        return total


def cores_between(
    before: dict[str, float], after: dict[str, float], seconds: float
) -> dict[str, float]:
    """Average cores busy per tree; `others` is the machine minus every named tree."""
    cores = {k: (after[k] - before[k]) / seconds for k in before if k in after}
    named = sum(v for k, v in cores.items() if k != "machine")
    cores["others"] = max(0.0, cores.get("machine", 0.0) - named)
    return {k: round(v, 3) for k, v in cores.items()}


@dataclass(frozen=True)
class Probe:
    order_id: str
    acked: float  # the order's 202
    last_miss: float  # the last lookup that did not find it started here
    found: float  # the lookup that found it returned here


class VisibilityProbe(threading.Thread):
    """Point lookups (`find_one` by `_id`) of sampled orders until each is readable."""

    def __init__(
        self,
        settings: Settings,
        per_s: float = 4.0,
        interval: float = 0.02,
        max_pending: int = 20,
        give_up_s: float = 120.0,
    ) -> None:
        super().__init__(name="bench-probe", daemon=True)
        self.store = open_store(settings, app="shopstream-bench")
        self.every, self.interval = 1 / per_s if per_s > 0 else float("inf"), interval
        self.max_pending, self.give_up_s = max_pending, give_up_s
        self.results: list[Probe] = []
        self.gave_up = 0
        self._inbox: queue.SimpleQueue[tuple[str, float]] = queue.SimpleQueue()
        self._pending: dict[str, tuple[float, float]] = {}  # id -> (acked, last miss)
        self._next_sample = 0.0
        self._halt = threading.Event()

    def offer(self, order_id: str, acked: float) -> None:
        """Called on each 202 (from the sender's loop); takes one order every 1/per_s s."""
        if acked >= self._next_sample and len(self._pending) < self.max_pending:
            self._next_sample = acked + self.every
            self._inbox.put((order_id, acked))

    def run(self) -> None:
        while not self._halt.is_set():
            with contextlib.suppress(queue.Empty):
                while True:
                    order_id, acked = self._inbox.get_nowait()
                    self._pending[order_id] = (acked, acked)
            for order_id, (acked, _) in list(self._pending.items()):
                self._check(order_id, acked)
            self._halt.wait(self.interval)

    def _check(self, order_id: str, acked: float) -> None:
        began = time.time()
        if self.store.orders.orders([order_id])[0] is not None:
            _, last_miss = self._pending.pop(order_id)
            self.results.append(Probe(order_id, acked, last_miss, time.time()))
        elif began - acked > self.give_up_s:
            del self._pending[order_id]
            self.gave_up += 1
        else:
            self._pending[order_id] = (acked, began)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
        self.store.close()

    def between(self, begin: float, end: float) -> list[Probe]:
        return [p for p in list(self.results) if begin <= p.acked <= end]
