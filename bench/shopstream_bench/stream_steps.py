"""The load steps of `shopstream bench stream` against one running stack, with observers.

Prime, idle, baseline, the rates under test, and a ladder of rates before the highest one. Each
step is open-loop load (`openloop`) while `watch` samples the lag, the checkpoints and CPU and
the probe polls a sample of orders; after it, the job is given time to catch up.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvloop

from shopstream.config import Settings
from shopstream_bench import payloads, stream_stats
from shopstream_bench.isolated import HOST, service_pids
from shopstream_bench.jobstate import CheckpointBatch
from shopstream_bench.openloop import OrderFactory, SendLog, Sent, send_at_rate
from shopstream_bench.stream_doc import StepRecord
from shopstream_bench.watch import CpuTree, VisibilityProbe, Watch, cores_between

__all__ = ["LoadSession", "StreamOptions"]

Report = Callable[[str], None]


@dataclass(frozen=True)
class StreamOptions:
    rates: tuple[float, ...] = (200.0, 1000.0, 5000.0)  # measured with the long window
    duration: float = 60.0
    warmup: float = 10.0
    # Tried ascending between the highest rate sustained and the lowest failed so far.
    ladder: tuple[float, ...] = (1500.0, 2000.0, 2500.0, 3000.0, 3500.0, 4000.0, 4500.0)
    ladder_duration: float = 30.0
    ladder_warmup: float = 5.0
    baseline_rate: float = 10.0
    baseline_duration: float = 30.0
    # Unmeasured load first: a fresh driver JVM spends ~3 minutes compiling its hot code (86 s
    # of JIT CPU in its first 3.5 minutes at 10 orders/s; issue 18), which halves what the
    # machine has left for everything else; the targets are for the running job.
    prime: float = 180.0
    prime_rate: float = 50.0
    trigger_s: float = 1.0
    tick: float = 0.01  # seconds between requests (each carries rate * tick orders)
    probe_per_s: float = 4.0
    drain_timeout: float = 60.0  # after a step, for the job to catch up
    budget_s: float = 1080.0  # steps that would end later than this after the start are skipped
    templates: int = 5_000
    seed: int = 1
    spark_events: bool = True  # the job writes Spark's event log (progress, jobs, tasks)


def _batch_id(batch: CheckpointBatch) -> int:
    return batch.batch_id


def _sizes(known: dict[int, CheckpointBatch], batches: list[CheckpointBatch]) -> list[int]:
    """Records per batch: its end offsets minus the previous batch's."""
    return [
        b.end_offset - known[b.batch_id - 1].end_offset for b in batches if b.batch_id - 1 in known
    ]


class LoadSession:
    """The load steps against one running stack, and the observers beside them."""

    def __init__(
        self, settings: Settings, opts: StreamOptions, report: Report, deadline: float
    ) -> None:
        self.settings, self.opts, self.report, self.deadline = settings, opts, report, deadline
        self.report(f"generating {opts.templates:,} order templates (seed {opts.seed})")
        templates = payloads.order_payloads(settings.postgres_url, opts.templates, opts.seed)
        self.factory = OrderFactory(templates)
        self.target = (HOST, settings.api_port, settings.api_key_list[0])
        self.pids = service_pids(settings)
        self.cpu = CpuTree({**self.pids, "bench": os.getpid()})
        self.watch = Watch(settings)
        self.probe = VisibilityProbe(settings, per_s=opts.probe_per_s)
        self.steps: list[StepRecord] = []
        self.skipped: list[float] = []
        self.ladder_skipped: dict[str, Any] | None = None
        self.idle: dict[str, float] = {}

    def _offer(self, sent: Sent) -> None:
        if sent.measured:
            self.probe.offer(sent.order_ids[0], sent.acked)

    async def _load(
        self, rate: float, warmup: float, duration: float
    ) -> tuple[SendLog, dict[str, float]]:
        loop = asyncio.get_running_loop()
        marks: dict[str, dict[str, float]] = {}
        loop.call_later(warmup, lambda: marks.setdefault("begin", self.cpu.read()))
        loop.call_later(warmup + duration, lambda: marks.setdefault("end", self.cpu.read()))
        log = await send_at_rate(
            self.target, self.factory, rate, warmup, duration, tick=self.opts.tick,
            on_ack=self._offer,
        )  # fmt: skip
        marks.setdefault("end", self.cpu.read())
        return log, cores_between(marks.get("begin", marks["end"]), marks["end"], duration)

    def _drain(self, since: float) -> dict[str, Any]:
        """Waits until both queries have committed everything produced; how long it took."""
        sample = first = self.watch.sample()
        while sample.enrich_lag or sample.lake_lag:
            if time.time() - first.at > self.opts.drain_timeout:
                self.report(f"[yellow]the job did not catch up in {self.opts.drain_timeout:g}s[/]")
                break
            time.sleep(0.25)
            sample = self.watch.sample()
        return {
            "backlog": first.enrich_lag,  # when the last request was answered
            "seconds": round(sample.at - since, 2),  # from the end of the window
            "caught_up": not sample.enrich_lag,
        }

    def step(self, kind: str, rate: float, warmup: float, duration: float) -> StepRecord:
        self.report(f"{kind}: {rate:,.0f} orders/s, {warmup:g}s warm-up + {duration:g}s")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            log, cores = runner.run(self._load(rate, warmup, duration))
        record = StepRecord(kind, rate, log, cores, self._drain(log.window[1]))
        begin, end = log.window
        batches = list(self.watch.enrich_batches.values())
        lag = stream_stats.lag_summary(list(self.watch.samples), batches, begin, end)
        timed = [(p.acked, p.found - p.acked) for p in self.probe.between(begin, end)]
        inside = sorted((b for b in batches if begin <= b.trigger_at <= end), key=_batch_id)
        gaps = [b.trigger_at - a.trigger_at for a, b in itertools.pairwise(inside)]
        sizes = _sizes(self.watch.enrich_batches, inside)
        cap = self.settings.stream_max_offsets_per_trigger
        record.online = {
            "lag": lag,
            "cycle_s": statistics.median(gaps) if gaps else None,
            "sizes": sizes,
            **stream_stats.judge(rate, lag, timed, sizes, cap),
        }
        verdict = {True: "keeps up", False: "falls behind", None: "unclear"}[record.sustainable]
        verdict += f" ({record.online['reasons'][0]})"
        self.report(
            f"  lag mean {lag.get('enrich_mean', 0):,.0f} max {lag.get('enrich_max', 0):,}, "
            f"caught up {record.drain['seconds']:.1f}s after the window: {verdict}"
        )
        self.steps.append(record)
        return record

    def _fits(self, warmup: float, duration: float, reserve: float = 0.0) -> bool:
        end = time.monotonic() + warmup + duration + 15 + reserve
        return end <= self.deadline

    def _idle(self, seconds: float) -> None:
        before = self.cpu.read()
        time.sleep(seconds)
        self.idle = cores_between(before, self.cpu.read(), seconds)

    def run(self) -> None:
        """Prime, baseline, the rates under test with the ladder before the highest one.

        The highest rate goes last: if the job cannot sustain it, its backlog would spoil the
        steps after it. Ladder steps are skipped when they would leave it no time.
        """
        opts = self.opts
        self.watch.start()
        self.probe.start()
        if opts.prime > 0:
            self.step("prime", opts.prime_rate, 0, opts.prime)
        self._idle(5.0)  # the job with nothing to do: the cost of its triggers
        self.step("baseline", opts.baseline_rate, 5.0, opts.baseline_duration)
        *first, last = sorted(opts.rates) or [opts.baseline_rate]
        for rate in first:
            self._long(rate)
        self._ladder(reserve=opts.warmup + opts.duration + opts.drain_timeout)
        if opts.rates:
            self._long(last)
            self._ladder()

    def _long(self, rate: float) -> None:
        if self._fits(self.opts.warmup, self.opts.duration):
            self.step("rate", rate, self.opts.warmup, self.opts.duration)
        else:
            self.skipped.append(rate)

    def _ladder(self, reserve: float = 0.0) -> None:
        """Rates between the highest sustained and the lowest failed so far, ascending."""
        opts = self.opts
        measured = [s for s in self.steps if s.kind != "prime"]
        low = max((s.rate for s in measured if s.sustainable is True), default=0.0)
        high = min((s.rate for s in measured if s.sustainable is False), default=float("inf"))
        rates = [r for r in sorted(opts.ladder) if low < r < high]
        cycle = measured[-1].cycle_s if measured else None
        if rates and (cycle is None or cycle > opts.ladder_duration / 3):
            # A window must hold 3 commits to show a trend; these batches are too long for it.
            self.report(f"ladder skipped: batches every {cycle or 0:.1f}s or more")
            self.ladder_skipped = {"rates": rates, "cycle_s": cycle}
            return
        for rate in rates:
            if rate in {s.rate for s in measured}:
                continue
            if not self._fits(opts.ladder_warmup, opts.ladder_duration, reserve):
                self.skipped.append(rate)
                continue
            step = self.step("ladder", rate, opts.ladder_warmup, opts.ladder_duration)
            if step.sustainable is not True:
                break

    def close(self) -> None:
        self.probe.stop()
        self.watch.stop()
