"""Spark's own account of the streaming job, from its event log.

The benchmark starts the job with `spark.eventLog.enabled` (through `PYSPARK_SUBMIT_ARGS`, so
the job's code is unchanged). The log holds each query's progress events (`durationMs`:
latestOffset, walCommit, queryPlanning, addBatch, commitOffsets, triggerExecution) and every
job, stage and task, tagged with the query id and batch id that ran it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shopstream_bench.results import percentile

__all__ = [
    "BatchJobs",
    "EventLog",
    "Progress",
    "read_event_log",
    "spark_summary",
    "submit_args",
]


def submit_args(folder: Path) -> str:
    """`PYSPARK_SUBMIT_ARGS` that make the job write an uncompressed event log to `folder`."""
    confs = {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": folder.as_uri(),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
    }
    return " ".join(f"--conf {k}={v}" for k, v in confs.items()) + " pyspark-shell"


@dataclass(frozen=True)
class Progress:
    """One `QueryProgressEvent`."""

    query: str  # the query's name (enrich, lake)
    batch_id: int
    at: float  # when the trigger fired (wall clock, s)
    rows: int
    durations_ms: dict[str, int]


@dataclass(frozen=True)
class BatchJobs:
    """The Spark jobs one micro-batch ran."""

    jobs: int
    busy_s: float  # wall time with at least one job running
    longest_job_s: float
    longest_job_tasks: int
    longest_task_s: float
    longest_task_jvm_cpu_s: float  # the rest of that task: Python workers, I/O, waiting
    task_s: float  # all its tasks' wall time: how long it held task slots (cores)


@dataclass
class EventLog:
    progress: list[Progress]
    batches: dict[tuple[str, int], BatchJobs]  # (query id, batch id) -> its jobs
    query_ids: dict[str, str]  # query name -> query id


def _events(folder: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        with path.open(errors="replace") as lines:
            for line in lines:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line cut short while the job was writing


def _progress(event: dict[str, Any]) -> Progress:
    p = event["progress"]
    at = datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00")).timestamp()
    rows = sum(int(s.get("numInputRows", 0)) for s in p.get("sources", []))
    return Progress(p["name"], int(p["batchId"]), at, rows, dict(p["durationMs"]))


def _union_s(intervals: list[tuple[int, int]]) -> float:
    total, end = 0, -1
    for lo, hi in sorted(intervals):
        if hi > end:
            total += hi - max(lo, end)
            end = hi
    return total / 1000


class _Jobs:
    """Accumulates jobs and tasks by the streaming batch they belong to."""

    def __init__(self) -> None:
        self.batch_of: dict[int, tuple[str, int]] = {}  # job -> (query id, batch)
        self.job_of_stage: dict[int, int] = {}
        self.span: dict[int, list[int]] = {}  # job -> [submitted, completed] ms
        self.tasks: dict[int, list[tuple[int, float, float]]] = defaultdict(list)  # per job

    def add(self, event: dict[str, Any]) -> None:
        kind = event["Event"]
        if kind == "SparkListenerJobStart":
            props = event.get("Properties") or {}
            if "streaming.sql.batchId" not in props:
                return
            job = event["Job ID"]
            self.batch_of[job] = (
                props["sql.streaming.queryId"],
                int(props["streaming.sql.batchId"]),
            )
            self.span[job] = [event["Submission Time"], event["Submission Time"]]
            for stage in event["Stage IDs"]:
                self.job_of_stage[stage] = job
        elif kind == "SparkListenerJobEnd" and event["Job ID"] in self.span:
            self.span[event["Job ID"]][1] = event["Completion Time"]
        elif kind == "SparkListenerTaskEnd" and event["Stage ID"] in self.job_of_stage:
            info, metrics = event["Task Info"], event.get("Task Metrics") or {}
            wall = (info["Finish Time"] - info["Launch Time"]) / 1000
            cpu = metrics.get("Executor CPU Time", 0) / 1e9
            self.tasks[self.job_of_stage[event["Stage ID"]]].append((event["Stage ID"], wall, cpu))

    def by_batch(self) -> dict[tuple[str, int], BatchJobs]:
        grouped: dict[tuple[str, int], list[int]] = defaultdict(list)
        for job, batch in self.batch_of.items():
            grouped[batch].append(job)
        return {batch: self._summary(jobs) for batch, jobs in grouped.items()}

    def _summary(self, jobs: list[int]) -> BatchJobs:
        spans = {j: tuple(self.span[j]) for j in jobs}
        longest = max(jobs, key=lambda j: spans[j][1] - spans[j][0])
        tasks = [t for j in jobs for t in self.tasks.get(j, [])]
        _, task_s, task_cpu = max(tasks, key=lambda t: t[1], default=(0, 0.0, 0.0))
        return BatchJobs(
            jobs=len(jobs),
            busy_s=_union_s([(lo, hi) for lo, hi in spans.values()]),
            longest_job_s=(spans[longest][1] - spans[longest][0]) / 1000,
            longest_job_tasks=len(self.tasks.get(longest, [])),
            longest_task_s=task_s,
            longest_task_jvm_cpu_s=task_cpu,
            task_s=sum(t[1] for t in tasks),
        )


def read_event_log(folder: Path) -> EventLog:
    progress: list[Progress] = []
    names: dict[str, str] = {}
    jobs = _Jobs()
    for event in _events(folder):
        kind = event.get("Event", "")
        if kind.endswith("QueryProgressEvent"):
            progress.append(_progress(event))
            names[event["progress"]["name"]] = event["progress"]["id"]
        else:
            jobs.add(event)
    return EventLog(progress, jobs.by_batch(), names)


_DURATIONS = ("latestOffset", "walCommit", "queryPlanning", "addBatch", "commitOffsets")


def _p50(values: list[float]) -> float | None:
    return round(percentile(values, 50), 3) if values else None


def _query_summary(progress: list[Progress]) -> dict[str, Any]:
    """Median phase durations (s) of a query's non-empty batches."""
    keys = (*_DURATIONS, "triggerExecution")
    return {
        "batches": len(progress),
        "rows_p50": _p50([float(p.rows) for p in progress]),
        "p50_s": {k: _p50([p.durations_ms.get(k, 0) / 1000 for p in progress]) for k in keys},
        "trigger_execution_p95_s": round(
            percentile([p.durations_ms.get("triggerExecution", 0) / 1000 for p in progress], 95), 3
        )
        if progress
        else None,
    }


def _slots(log: EventLog, progress: list[Progress], seconds: float) -> float | None:
    """Task slots (cores) a query's batches held on average over `seconds`."""
    query_id = log.query_ids.get(progress[0].query, "") if progress else ""
    held = [log.batches[(query_id, p.batch_id)].task_s for p in progress]
    return round(sum(held) / seconds, 3) if held and seconds > 0 else None


def spark_summary(log: EventLog, begin: float, end: float) -> dict[str, Any]:
    """Both queries' progress, and the enrich batches' Spark jobs, for batches in [begin, end]."""
    inside = [
        p
        for p in log.progress
        if begin <= p.at <= end
        and p.rows > 0
        and (log.query_ids.get(p.query, ""), p.batch_id) in log.batches
    ]
    lake = [p for p in inside if p.query == "lake"]
    enrich = [p for p in inside if p.query == "enrich"]
    query_id = log.query_ids.get("enrich", "")
    jobs = [
        log.batches[(query_id, p.batch_id)] for p in enrich if (query_id, p.batch_id) in log.batches
    ]
    add_batch = {p.batch_id: p.durations_ms.get("addBatch", 0) / 1000 for p in enrich}
    driver = [
        add_batch[p.batch_id] - log.batches[(query_id, p.batch_id)].busy_s
        for p in enrich
        if (query_id, p.batch_id) in log.batches
    ]
    return {
        "enrich": _query_summary(enrich),
        "lake": _query_summary(lake),
        "task_slots": {
            "enrich": _slots(log, enrich, end - begin),
            "lake": _slots(log, lake, end - begin),
        },
        "enrich_jobs": {
            "jobs_p50": _p50([float(j.jobs) for j in jobs]),
            "busy_p50_s": _p50([j.busy_s for j in jobs]),
            "between_jobs_p50_s": _p50(driver),  # addBatch with no Spark job running: driver code
            "longest_job_p50_s": _p50([j.longest_job_s for j in jobs]),
            "longest_job_tasks_p50": _p50([float(j.longest_job_tasks) for j in jobs]),
            "longest_task_p50_s": _p50([j.longest_task_s for j in jobs]),
            "longest_task_jvm_cpu_p50_s": _p50([j.longest_task_jvm_cpu_s for j in jobs]),
        },
    }
