"""Every enrich micro-batch of a run, and what their cost says about the rate the job sustains.

A micro-batch costs a fixed part (Spark jobs, planning, driver code, round trips) plus a part
per record. When the job falls behind, batches grow, the fixed part is shared by more records
and throughput rises, until `maxOffsetsPerTrigger` caps the batch. So the highest rate the job
sustains is its throughput with full batches, and below it the batch cycle settles where
`cycle = a + b * rate * cycle`, i.e. `cycle = a / (1 - b * rate)`.
"""

from __future__ import annotations

from typing import Any

from shopstream_bench.jobstate import CheckpointBatch, LedgerBatch
from shopstream_bench.sparklog import EventLog

__all__ = ["batch_rows", "cost_model"]

_WARM_AFTER = 2  # the first batches after a start pay for JIT, caches and Python workers


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def batch_rows(
    ledger: dict[int, LedgerBatch],
    checkpoint: dict[int, CheckpointBatch],
    spark: EventLog | None,
) -> list[dict[str, Any]]:
    """One row per finished enrich batch: size, timestamps' differences, Spark's view."""
    progress = {p.batch_id: p for p in spark.progress if p.query == "enrich"} if spark else {}
    query_id = spark.query_ids.get("enrich", "") if spark else ""
    rows = []
    for batch_id in sorted(ledger):
        lb, ck = ledger[batch_id], checkpoint.get(batch_id)
        row: dict[str, Any] = {
            "batch_id": batch_id,
            "records": lb.records,
            "new_orders": lb.new_orders,
            "buckets": lb.buckets,
            "attempts": lb.attempts,
            "read": _r(lb.started_at - lb.called_at),
            "write": _r(lb.orders_written_at - lb.started_at),
            "rollups": _r(lb.finished_at - lb.orders_written_at),
            "foreach_batch": lb.duration_s,
            "sink": lb.sink_s,
        }
        if ck is not None:
            row |= {
                "trigger_at": round(ck.trigger_at, 3),
                "plan": _r(ck.planned_at - ck.trigger_at),
                "launch": _r(lb.called_at - ck.planned_at),
                "trigger_to_commit": _r(ck.committed_at - ck.trigger_at)
                if ck.committed_at
                else None,
            }
        if batch_id in progress:
            row["spark_ms"] = progress[batch_id].durations_ms
        jobs = spark.batches.get((query_id, batch_id)) if spark else None
        if jobs is not None:
            row |= {
                "spark_jobs": jobs.jobs,
                "jobs_busy": _r(jobs.busy_s),
                "longest_task": _r(jobs.longest_task_s),
                "longest_task_jvm_cpu": _r(jobs.longest_task_jvm_cpu_s),
            }
        rows.append(row)
    return rows


def _fit(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least squares y = a + b x: (a, b, r²)."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    syy = sum((y - my) ** 2 for _, y in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    b = sxy / sxx if sxx else 0.0
    r2 = sxy * sxy / (sxx * syy) if sxx and syy else 0.0
    return my - b * mx, b, r2


def cost_model(rows: list[dict[str, Any]], cap: int) -> dict[str, Any]:
    """Batch time (trigger to commit) against records, and the rates it implies."""
    warm = [r for r in rows[_WARM_AFTER:] if r.get("trigger_to_commit") and r["records"]]
    if len({r["records"] for r in warm}) < 3:
        return {"batches": len(warm)}
    a, b, r2 = _fit([(float(r["records"]), r["trigger_to_commit"]) for r in warm])
    full = [r for r in warm if r["records"] >= 0.95 * cap]
    measured = (
        sum(r["records"] for r in full) / sum(r["trigger_to_commit"] for r in full)
        if full
        else None
    )
    return {
        "batches": len(warm),
        "fixed_s": round(a, 3),
        "per_record_ms": round(b * 1000, 3),
        "r2": round(r2, 3),
        "max_offsets_per_trigger": cap,
        # Throughput with full batches: above it the backlog grows without end.
        "capacity_model_per_s": round(cap / (a + b * cap), 1) if a + b * cap > 0 else None,
        "capacity_measured_per_s": None if measured is None else round(measured, 1),
        "full_batches": len(full),
        # The steady batch cycle below capacity: cycle = a / (1 - b * rate).
        "cycle_s_at": {str(rate): _cycle(a, b, rate, cap) for rate in (10, 50, 100, 200)},
    }


def _cycle(a: float, b: float, rate: float, cap: int) -> float | None:
    """The steady cycle at `rate`; None when no batch within the cap keeps up."""
    if a <= 0 or b * rate >= 1:
        return None
    cycle = a / (1 - b * rate)
    return round(cycle, 2) if rate * cycle <= cap else None
