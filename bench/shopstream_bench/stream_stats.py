"""From raw observations to the numbers of one load step: latency, its parts, lag, verdict.

The latency of an order is `orders_written_at` of the micro-batch that inserted it (the job's
ledger) minus the moment the client got its 202. It is an upper bound: each partition's writes
end a little before the batch notes the time. Its parts telescope to exactly that total:

    wait    202 -> the trigger of the batch that picks it up (`batchTimestampMs`)
    plan    trigger -> `offsets/N` written (latest offsets, write-ahead log)
    launch  `offsets/N` -> `foreachBatch` entered (query planning, job setup)
    read    `foreachBatch` entered -> ledger `started_at` (Kafka read, persist, count)
    write   `started_at` -> `orders_written_at` (parse, enrich, insert the order documents)
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from typing import Any

from shopstream_bench.jobstate import CheckpointBatch, LedgerBatch
from shopstream_bench.openloop import SendLog
from shopstream_bench.results import percentile
from shopstream_bench.watch import LagSample, Probe

__all__ = [
    "PARTS",
    "batch_summary",
    "judge",
    "lag_summary",
    "lake_summary",
    "order_latencies",
    "probe_summary",
    "spread",
]

PARTS = ("wait", "plan", "launch", "read", "write")
# The backlog is flat when it grows by less than this share of the input rate (plus a floor
# for noise).
LAG_GROWTH_SHARE, LAG_GROWTH_FLOOR = 0.05, 5.0


def spread(values: Sequence[float], digits: int = 3, censored: Sequence[float] = ()) -> dict:
    """n, p50, p95, p99, max and mean of `values` (seconds).

    `censored`: lower bounds of values not observed yet (orders still unprocessed when the run
    ended). They rank above every observed value; a percentile that lands on one is unknown
    (None), and `censored_min` says it is at least that.
    """
    if not values and not censored:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ranked = sorted(values) + [math.inf] * len(censored)
    stats: dict[str, float | None] = {}
    for q in (50, 95, 99):
        value = percentile(ranked, q)
        stats[f"p{q}"] = None if math.isinf(value) else round(value, digits)
    stats["max"] = None if censored else round(max(values), digits)
    stats["mean"] = None if censored else round(sum(values) / len(values), digits)
    found: dict[str, Any] = {"n": len(values), **stats}
    if censored:
        found |= {"censored": len(censored), "censored_min": round(min(censored), digits)}
    return found


def _slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 for fewer than 3 points)."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if sxx == 0 else sum((x - mx) * (y - my) for x, y in points) / sxx


def _produced_at(samples: Sequence[LagSample], at: float) -> float | None:
    """Records in Kafka at `at`, interpolated between the two samples around it."""
    i = bisect.bisect_left([s.at for s in samples], at)
    if i == 0 or i == len(samples):
        return None
    a, b = samples[i - 1], samples[i]
    return a.produced + (b.produced - a.produced) * (at - a.at) / (b.at - a.at)


def _residuals(
    samples: Sequence[LagSample], batches: Sequence[CheckpointBatch]
) -> list[tuple[float, float]]:
    """(commit time, records already produced then but left for later batches), per batch.

    The sampled lag is a sawtooth (it drops at each commit); the backlog right after each
    commit is its floor, and it grows steadily only when the job falls behind.
    """
    points = []
    for batch in batches:
        if batch.committed_at is not None:
            produced = _produced_at(samples, batch.committed_at)
            if produced is not None:
                points.append((batch.committed_at, max(0.0, produced - batch.end_offset)))
    return points


def lag_summary(
    samples: Sequence[LagSample], batches: Sequence[CheckpointBatch], begin: float, end: float
) -> dict[str, Any]:
    """Records produced but not yet committed, over the window [begin, end]."""
    window = [s for s in samples if begin <= s.at <= end]
    if not window:
        return {"samples": 0}
    enrich = [s.enrich_lag for s in window]
    committed = [
        b for b in batches if b.committed_at is not None and begin <= b.committed_at <= end
    ]
    residuals = _residuals(samples, committed)
    return {
        "samples": len(window),
        "enrich_mean": round(sum(enrich) / len(enrich), 1),
        "enrich_max": max(enrich),
        "enrich_end": enrich[-1],
        "enrich_slope_per_s": round(_slope([(s.at, s.enrich_lag) for s in window]), 2),
        "after_commit": [round(v) for _, v in residuals],
        "after_commit_slope_per_s": round(_slope(residuals), 2) if len(residuals) >= 3 else None,
        "lake_mean": round(sum(s.lake_lag for s in window) / len(window), 1),
        "lake_max": max(s.lake_lag for s in window),
        "lake_slope_per_s": round(_slope([(s.at, s.lake_lag) for s in window]), 2),
    }


def _thirds_p50(timed: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """Median latency of the first and the last third of the window (by 202 time)."""
    if len(timed) < 30:
        return None
    ordered = sorted(timed)
    third = len(ordered) // 3
    first, last = ordered[:third], ordered[-third:]
    return percentile([v for _, v in first], 50), percentile([v for _, v in last], 50)


def judge(
    rate: float,
    lag: dict[str, Any],
    timed_latencies: Sequence[tuple[float, float]],
    sizes: Sequence[int] = (),
    cap: int | None = None,
) -> dict[str, Any]:
    """Whether the job kept up with `rate` over the window: True, False, or None (unclear).

    A micro-batch job that falls behind takes bigger batches, which cost less per record, so
    up to its capacity it settles at a longer cycle; only batches held at the cap
    (`maxOffsetsPerTrigger`, `cap`) cannot grow any more. So: the backlog left after each
    commit (needs 3 commits in the window) is flat -> True; it grows while the batches (`sizes`,
    in order) are at the cap -> False; it grows below the cap -> None, still settling. Without
    3 commits, only capped batches and a lag growing by more than half the rate say False.
    """
    limit = LAG_GROWTH_SHARE * rate + LAG_GROWTH_FLOOR
    slope = lag.get("after_commit_slope_per_s")
    sampled = lag.get("enrich_slope_per_s", 0.0)
    capped = bool(cap) and any(n >= 0.95 * (cap or 0) for n in sizes)
    verdict: bool | None
    if slope is None:  # within one batch the lag rises anyway: only capped batches tell
        verdict = False if capped and sampled > rate / 2 else None
        reason = f"lag grew {sampled:,.0f} records/s" if verdict is False else "< 3 commits"
    elif slope <= limit:
        verdict, reason = True, f"backlog after commits flat ({slope:,.0f} records/s)"
    elif capped:
        verdict, reason = False, f"backlog grew {slope:,.0f} records/s with batches at the cap"
    else:
        verdict, reason = None, f"backlog grew {slope:,.0f} records/s, batches still growing"
    thirds = _thirds_p50(timed_latencies)
    drift = None if thirds is None else {"first_third_p50": thirds[0], "last_third_p50": thirds[1]}
    return {
        "sustainable": verdict,
        "reasons": [reason],
        "latency_drift_s": drift,
        # Seconds of latency added per second of the window (0 when the job keeps up).
        "latency_growth_s_per_s": round(_slope(timed_latencies), 3),
    }


def order_latencies(
    log: SendLog,
    placed: dict[str, tuple[str, int]],
    query_id: str,
    ledger: dict[int, LedgerBatch],
    checkpoint: dict[int, CheckpointBatch],
    pending_at: float | None = None,
) -> dict[str, Any]:
    """Per accepted order of the measured window: latency, its parts, and what is missing.

    `pending_at`: when the job was left with a backlog, the time the orders were read; an
    order not found then is still queued (censored), not lost.
    """
    total: list[tuple[float, float]] = []  # (202 at, seconds)
    parts: dict[str, list[float]] = {p: [] for p in PARTS}
    until_finished, until_committed, pending = [], [], []
    missing = unmatched = 0
    for req in log.requests:
        if not req.measured or req.status != 202:
            continue
        for order_id in req.order_ids:
            where = placed.get(order_id)
            batch = ledger.get(where[1]) if where and where[0] == query_id else None
            if batch is None and pending_at is not None:
                # Not written yet, or written by a batch still running: at least this long.
                pending.append(pending_at - req.acked)
                continue
            if batch is None:
                missing += where is None
                unmatched += where is not None
                continue
            total.append((req.acked, batch.orders_written_at - req.acked))
            until_finished.append(batch.finished_at - req.acked)
            ck = checkpoint.get(batch.batch_id)
            if ck is None:
                continue
            marks = (
                req.acked, ck.trigger_at, ck.planned_at, batch.called_at, batch.started_at,
                batch.orders_written_at,
            )  # fmt: skip
            for name, lo, hi in zip(PARTS, marks, marks[1:], strict=False):
                parts[name].append(hi - lo)
            if ck.committed_at is not None:
                until_committed.append(ck.committed_at - req.acked)
    return {
        "timed": total,
        "e2e": spread([v for _, v in total], censored=pending),
        "parts": {name: spread(values) for name, values in parts.items()},
        "until_rollups": spread(until_finished),
        "until_committed": spread(until_committed),
        "pending": len(pending),  # not processed yet when the run ended
        "missing": missing,  # acknowledged, yet no order document (with no backlog left)
        "unmatched": unmatched,  # an order document from another query or an unknown batch
    }


def probe_summary(probes: Sequence[Probe], latencies: dict[str, float]) -> dict[str, Any]:
    """Direct polling vs the ledger estimate, for the sampled orders."""
    seen = [p.found - p.acked for p in probes]
    resolution = [p.found - p.last_miss for p in probes]
    vs_ledger = [
        latencies[p.order_id] - (p.found - p.acked) for p in probes if p.order_id in latencies
    ]
    return {
        "visible": spread(seen),
        "poll_resolution": spread(resolution),
        "ledger_minus_probe": spread(vs_ledger),
    }


def batch_summary(
    ledger: dict[int, LedgerBatch], checkpoint: dict[int, CheckpointBatch], begin: float, end: float
) -> dict[str, Any]:
    """The enrich batches triggered inside [begin, end]: sizes, spacing and phases."""
    ids = sorted(b for b, ck in checkpoint.items() if begin <= ck.trigger_at <= end)
    rows = [(checkpoint[b], ledger[b]) for b in ids if b in ledger]
    if not rows:
        return {"count": 0}
    triggers = [ck.trigger_at for ck, _ in rows]
    phases: dict[str, list[float]] = {
        "plan": [ck.planned_at - ck.trigger_at for ck, _ in rows],
        "launch": [lb.called_at - ck.planned_at for ck, lb in rows],
        "read": [lb.started_at - lb.called_at for _, lb in rows],
        "write": [lb.orders_written_at - lb.started_at for _, lb in rows],
        "rollups": [lb.finished_at - lb.orders_written_at for _, lb in rows],
        "foreach_batch": [lb.duration_s for _, lb in rows],
        "commit": [ck.committed_at - lb.finished_at for ck, lb in rows if ck.committed_at],
        "trigger_to_commit": [ck.committed_at - ck.trigger_at for ck, _ in rows if ck.committed_at],
    }
    records = [lb.records for _, lb in rows]
    gaps = [b - a for a, b in itertools.pairwise(triggers)]
    return {
        "count": len(rows),
        "records_mean": round(sum(records) / len(records), 1),
        "records_max": max(records),
        "replays": sum(lb.attempts > 1 for _, lb in rows),
        "trigger_spacing": spread(gaps),
        "phases": {name: spread(values) for name, values in phases.items()},
    }


def lake_summary(checkpoint: dict[int, CheckpointBatch], begin: float, end: float) -> dict:
    """The landing query's batches triggered inside [begin, end], from its checkpoint."""
    inside = sorted((b for b in checkpoint.values() if begin <= b.trigger_at <= end), key=_id)
    done = [b.committed_at - b.trigger_at for b in inside if b.committed_at]
    gaps = [b.trigger_at - a.trigger_at for a, b in itertools.pairwise(inside)]
    return {
        "count": len(inside),
        "trigger_to_commit": spread(done),
        "trigger_spacing": spread(gaps),
    }


def _id(batch: CheckpointBatch) -> int:
    return batch.batch_id
