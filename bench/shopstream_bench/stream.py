"""`shopstream bench stream`: end-to-end latency, API 202 -> enriched order readable in MongoDB.

One isolated stack with the streaming job under supervisord, open-loop load at fixed rates
(`stream_steps`). After the load: every order joined to the ledger entry of the batch that
wrote it (latency and its parts), Spark's event log (progress, jobs), the job's log, and a fit
of batch cost against batch size for the highest sustainable rate. See docs/benchmarks.md.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shopstream
from shopstream.config import Settings
from shopstream.stack.sandbox import sandbox_dir
from shopstream.store.ferretdb import open_store
from shopstream_bench.batches import batch_rows, cost_model
from shopstream_bench.ceiling import store_ceiling
from shopstream_bench.isolated import isolated_stack
from shopstream_bench.jobstate import read_ledger
from shopstream_bench.machine import code_version, describe_machine
from shopstream_bench.sparklog import read_event_log, submit_args
from shopstream_bench.stream_doc import job_log, step_document, summary
from shopstream_bench.stream_steps import LoadSession, StreamOptions

__all__ = ["TARGETS", "StreamOptions", "run_stream"]

Report = Callable[[str], None]
# Issue 18's targets (issue 7's were 1.0 / 2.0 s at 200/s and 1.5 / 3.0 s at 1,000/s):
# name -> (rate, percentile, at most this many seconds).
TARGETS = {
    "p50_at_200_s": (200.0, "p50", 0.5),
    "p99_at_200_s": (200.0, "p99", 1.0),
    "p50_at_1000_s": (1000.0, "p50", 1.0),
    "p99_at_1000_s": (1000.0, "p99", 2.0),
}


def _collect(session: LoadSession, report: Report) -> dict[str, Any]:
    """After the load: the ledger, and the batch of every order (a scan)."""
    settings = session.settings
    query_id = session.watch.enrich.query_id() or ""
    store = open_store(settings, app="shopstream-bench")
    try:
        ledger = read_ledger(store, query_id)
        began, scanned_at = time.monotonic(), time.time()
        placed = store.orders.inserting_batches()
        scan_s = time.monotonic() - began
        report(f"read {len(placed):,} order documents in {scan_s:.1f}s and {len(ledger):,} batches")
        report("measuring the store's own insert ceiling with the run's order documents")
        ceiling = store_ceiling(settings, store, sorted(placed))
    finally:
        store.close()
    return {
        "query_id": query_id,
        "ledger": ledger,
        "placed": placed,
        "scan": {"orders": len(placed), "seconds": round(scan_s, 1)},
        "store_ceiling": ceiling,
        "scanned_at": scanned_at,
        "lake_batches": session.watch.lake_batches,
        "caught_up": all(s.drain.get("caught_up") for s in session.steps[-1:]),
        "stack": _stack(settings),
    }


def _ratio(job: float | None, store: float | None) -> float | None:
    return round(job / store, 2) if job and store else None


def _code() -> dict[str, Any]:
    """The commit measured, and whether the source tree differed from it."""
    return {**code_version(), "shopstream_from": str(Path(shopstream.__file__).resolve().parent)}


def _stack(settings: Settings) -> dict[str, Any]:
    return {
        "stream_trigger_s": settings.stream_trigger_s,
        "lake_trigger_s": getattr(settings, "lake_trigger_s", settings.stream_trigger_s),
        "stream_max_offsets_per_trigger": settings.stream_max_offsets_per_trigger,
        "spark_master": settings.spark_master,
        "spark_driver_memory": settings.spark_driver_memory,
        "topic_partitions": settings.topic_partitions,
    }


def _measure(
    base: Settings, opts: StreamOptions, report: Report, events: Path | None, began: float
) -> tuple[LoadSession, dict[str, Any]]:
    """Runs the steps on a fresh isolated stack; what they saw, and what the job left."""
    overrides = {
        "stream_enabled": True,
        "stream_trigger_s": opts.trigger_s,
        "spark_master": "local[*]",
        "mongo_database": f"bench_{uuid.uuid4().hex[:8]}",
    }
    env = {"PYSPARK_SUBMIT_ARGS": submit_args(events)} if events else None
    logs: dict[str, Any] = {}

    def read_logs(settings: Settings) -> None:  # the whole log, shutdown included
        logs.update(job_log(settings.data_path / "logs" / "stream.log"))

    with isolated_stack(base, report, env=env, before_delete=read_logs, **overrides) as settings:
        session = LoadSession(settings, opts, report, began + opts.budget_s)
        try:
            session.run()
        finally:
            session.close()
        collected = _collect(session, report)
        collected["stop_requested_at"] = datetime.now(UTC).isoformat()
    return session, {**collected, "log": logs}


def run_stream(base: Settings, opts: StreamOptions, report: Report) -> dict[str, Any]:
    """Runs every step on a fresh isolated stack; returns the results document."""
    started, began = datetime.now(UTC), time.monotonic()
    machine, code = describe_machine(), _code()  # the code the stack is about to import
    events = sandbox_dir("shopstream-bench-events-") if opts.spark_events else None
    try:
        session, collected = _measure(base, opts, report, events, began)
        spark = read_event_log(events) if events else None
    finally:
        if events:
            shutil.rmtree(events, ignore_errors=True)
    checkpoint, probes = session.watch.enrich_batches, session.probe.results
    steps = [step_document(s, probes, collected, checkpoint, spark) for s in session.steps]
    batches = batch_rows(collected["ledger"], checkpoint, spark)
    model = cost_model(batches, collected["stack"]["stream_max_offsets_per_trigger"])
    return {
        "benchmark": "stream",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.monotonic() - began, 1),
        "machine": machine,
        "code": {**code, "src_changed_during_run": _code()["src_changes"] != code["src_changes"]},
        "options": asdict(opts),
        "stack": collected["stack"],
        "idle_cpu_cores": session.idle,
        "steps": steps,
        "skipped_rates": session.skipped,
        "ladder_skipped": session.ladder_skipped,
        "summary": {
            **summary(steps, TARGETS),
            "capacity": model,
            "store_ceiling": collected["store_ceiling"],
            "vs_store_ceiling": _ratio(
                model.get("capacity_measured_per_s"), collected["store_ceiling"].get("per_s")
            ),
        },
        "batches": batches,
        "job": {
            "scan": collected["scan"],
            "log": collected["log"],
            "watch_errors": session.watch.errors,
            "probe_gave_up": session.probe.gave_up,
            "batches_seen": len(checkpoint),
            "stop_requested_at": collected["stop_requested_at"],
            "spark_event_log": spark is not None,
        },
    }
