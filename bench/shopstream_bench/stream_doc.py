"""The results document of `shopstream bench stream`: one entry per load step, and a summary."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopstream_bench import stream_stats
from shopstream_bench.jobstate import CheckpointBatch, LedgerBatch
from shopstream_bench.openloop import SendLog
from shopstream_bench.sparklog import EventLog, spark_summary
from shopstream_bench.watch import Probe

__all__ = ["StepRecord", "job_log", "step_document", "summary"]

_LOG_PROBLEM = re.compile(r"\b(WARN|WARNING|ERROR|CRITICAL)\b|Traceback|Exception")
_LOG_NOISE = (
    "Using incubator modules",  # printed by the JVM at every start
    # Spark 4 stopping a query cancels its job group even when no job is running: two lines
    # per query at every clean stop (the run ends by stopping the job).
    "Cannot find active jobs for it",
)


@dataclass
class StepRecord:
    """What one load step observed while it ran (analysed once the run is over)."""

    kind: str  # prime | baseline | rate | ladder
    rate: float
    log: SendLog
    cpu_cores: dict[str, float] = field(default_factory=dict)
    drain: dict[str, Any] = field(default_factory=dict)
    online: dict[str, Any] = field(default_factory=dict)  # verdict from lag and probes

    @property
    def sustainable(self) -> bool | None:
        """True or False when the window shows it; None when its batches were too long to."""
        verdict = self.online.get("sustainable")
        return None if verdict is None else bool(verdict)

    @property
    def cycle_s(self) -> float | None:
        """Median time between the enrich batches' triggers in the window."""
        value = self.online.get("cycle_s")
        return None if value is None else float(value)


def _sender(log: SendLog) -> dict[str, Any]:
    """What the client did: orders accepted in the window, 202 latency, how late it sent."""
    begin, end = log.window
    done = [r for r in log.requests if r.measured]
    ok = [r for r in done if r.status == 202]
    orders = sum(len(r.order_ids) for r in ok)
    return {
        "orders": orders,
        "orders_per_s": round(orders / log.duration, 1),
        "requests": len(done),
        "non_202": len(done) - len(ok),
        "errors": log.error_count,
        "error_samples": log.errors,
        "ack_ms": _ms(stream_stats.spread([r.acked - r.sent for r in ok])),
        "late_ms": _ms(stream_stats.spread([r.sent - r.scheduled for r in done])),
        "window": [begin, end],
    }


def _ms(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if k == "n" or v is None else round(v * 1000, 2)) for k, v in stats.items()}


def step_document(
    step: StepRecord,
    probes: Sequence[Probe],
    collected: dict[str, Any],
    checkpoint: dict[int, CheckpointBatch],
    spark: EventLog | None,
) -> dict[str, Any]:
    ledger: dict[int, LedgerBatch] = collected["ledger"]
    begin, end = step.log.window
    pending_at = None if collected["caught_up"] else collected["scanned_at"]
    orders = stream_stats.order_latencies(
        step.log, collected["placed"], collected["query_id"], ledger, checkpoint, pending_at
    )
    timed = orders.pop("timed")
    by_id = _latency_by_order(step.log, collected, ledger)
    in_window = [p for p in probes if begin <= p.acked <= end]
    cap = collected["stack"]["stream_max_offsets_per_trigger"]
    final = stream_stats.judge(step.rate, step.online["lag"], timed, step.online["sizes"], cap)
    return {
        "kind": step.kind,
        "rate": step.rate,
        "warmup_s": step.log.warmup,
        "duration_s": step.log.duration,
        "sender": _sender(step.log),
        "latency_s": orders,
        "probe_s": stream_stats.probe_summary(in_window, by_id),
        # The batches (enrich, then lake) triggered inside the window.
        "batches": stream_stats.batch_summary(ledger, checkpoint, begin, end),
        "lake_batches": stream_stats.lake_summary(collected["lake_batches"], begin, end),
        "lag": step.online["lag"],
        "sustainable": final["sustainable"],
        "reasons": final["reasons"],
        "latency_drift_s": final["latency_drift_s"],
        "latency_growth_s_per_s": final["latency_growth_s_per_s"],
        "online_verdict": {k: step.online[k] for k in ("sustainable", "reasons")},
        "spark": None if spark is None else spark_summary(spark, begin, end),
        "drain": step.drain,
        "cpu_cores": step.cpu_cores,
    }


def _latency_by_order(
    log: SendLog, collected: dict[str, Any], ledger: dict[int, LedgerBatch]
) -> dict[str, float]:
    placed, query_id = collected["placed"], collected["query_id"]
    found = {}
    for req in log.requests:
        for order_id in req.order_ids if req.status == 202 else ():
            where = placed.get(order_id)
            if where and where[0] == query_id and where[1] in ledger:
                found[order_id] = ledger[where[1]].orders_written_at - req.acked
    return found


def summary(
    steps: list[dict[str, Any]], targets: dict[str, tuple[float, str, float]]
) -> dict[str, Any]:
    """The headline numbers: baseline, each tested rate, the highest sustained rate, targets."""
    measured = [s for s in steps if s["kind"] != "prime"]
    failed = [s["rate"] for s in measured if s["sustainable"] is False]
    first_failed = min(failed, default=None)
    sustained = [
        s["rate"]
        for s in measured
        if s["sustainable"] is True and (first_failed is None or s["rate"] < first_failed)
    ]
    by_rate = {f"{s['rate']:g}": _headline(s) for s in measured if s["kind"] != "baseline"}
    baseline = next((_headline(s) for s in measured if s["kind"] == "baseline"), None)
    checks = {}
    for name, (rate, key, target) in targets.items():
        step = next((s for s in measured if s["rate"] == rate and s["kind"] == "rate"), None)
        if step is None:
            continue
        value = step["latency_s"]["e2e"][key]
        checks[name] = {
            "target": target,
            "measured": value,  # the ledger's upper bound, every order
            "probe": step["probe_s"]["visible"][key],  # polled by _id, a sample
            "met": value is not None and value <= target,
        }
    return {
        "baseline": baseline,
        "rates": by_rate,
        "max_sustained_rate": max(sustained, default=None),
        "first_unsustained_rate": first_failed,
        "targets": checks,
    }


def _headline(step: dict[str, Any]) -> dict[str, Any]:
    e2e, probe = step["latency_s"]["e2e"], step["probe_s"]["visible"]
    return {
        "rate": step["rate"],
        "orders_per_s": step["sender"]["orders_per_s"],
        "p50": e2e["p50"],
        "p95": e2e["p95"],
        "p99": e2e["p99"],
        "probe_p50": probe["p50"],
        "probe_p99": probe["p99"],
        "ack_p50_ms": step["sender"]["ack_ms"]["p50"],
        "sustainable": step["sustainable"],
    }


def job_log(path: Path, samples: int = 10) -> dict[str, Any]:
    """Warnings and errors in the streaming job's log: counts and the distinct first lines."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return {"error": str(exc)}
    problems = [
        line
        for line in lines
        if _LOG_PROBLEM.search(line) and not any(n in line for n in _LOG_NOISE)
    ]
    # Timestamps and numbers differ between repeats of one message; count the shapes.
    shapes: Counter[str] = Counter()
    first: dict[str, str] = {}
    for line in problems:
        shape = re.sub(r"\d+", "N", line)[:200]
        shapes[shape] += 1
        first.setdefault(shape, line[:300])
    return {
        "lines": len(lines),
        "problem_lines": len(problems),
        "summary_lines": sum("shopstream.streaming.job last" in line for line in lines),
        "distinct": [
            {"count": n, "first": first[shape]} for shape, n in shapes.most_common(samples)
        ],
    }
