"""Presenting a `bench stream` results document as rich tables (narrow enough for 80 columns)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from shopstream_bench.stream_stats import PARTS

__all__ = ["job_table", "latency_table", "missed", "parts_table", "targets_table"]


def _s(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _name(step: dict[str, Any]) -> str:
    kind = {"rate": "", "ladder": " ladder", "baseline": " base", "prime": " prime"}
    return f"{step['rate']:,.0f}/s{kind.get(step['kind'], '')}"


def _table(title: str, caption: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("step", no_wrap=True)
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    return table


def latency_table(doc: dict[str, Any]) -> Table:
    table = _table(
        f"API 202 -> order readable in MongoDB (s), trigger {doc['stack']['stream_trigger_s']:g}s",
        "e2e: its batch's orders_written_at - 202 (every order); probe: find_one by _id "
        "(a sample); 202: the API's answer alone",
        ("sent/s", "202 ms", "p50", "p95", "p99", "probe p50", "p99", "keeps up"),
    )
    for step in doc["steps"]:
        e2e, probe = step["latency_s"]["e2e"], step["probe_s"]["visible"]
        table.add_row(
            _name(step),
            _s(step["sender"]["orders_per_s"], ",.0f"),
            _s(step["sender"]["ack_ms"]["p50"], ".0f"),
            _s(e2e["p50"]),
            _s(e2e["p95"]),
            _s(e2e["p99"]),
            _s(probe["p50"]),
            _s(probe["p99"]),
            {True: "[green]yes[/]", False: "[red]no[/]"}.get(step["sustainable"], "unclear"),
        )
    return table


def job_table(doc: dict[str, Any]) -> Table:
    table = _table(
        "the job during each window",
        f"backlog/s: growth of the backlog left after each commit; cores: job, database, and "
        f"everything outside the stack ({doc['machine']['nproc']} CPUs in all)",
        ("batches", "rec/batch", "cycle s", "backlog/s", "job", "db", "others"),
    )
    for step in doc["steps"]:
        batches, lag, cpu = step["batches"], step["lag"], step["cpu_cores"]
        slope = lag.get("after_commit_slope_per_s")
        table.add_row(
            _name(step),
            str(batches.get("count", 0)),
            _s(batches.get("records_mean"), ",.0f"),
            _s(batches.get("trigger_spacing", {}).get("p50")),
            _s(slope if slope is not None else lag.get("enrich_slope_per_s"), ",.0f"),
            *(_s(cpu.get(k)) for k in ("stream", "mongo", "others")),
        )
    return table


def parts_table(doc: dict[str, Any]) -> Table:
    table = _table(
        "where the time goes (s, p50 per order; rollups and commit: per batch)",
        "wait: 202 -> its batch's trigger; plan: -> offsets logged; launch: -> foreachBatch; "
        "read: the ledger's begin; write: the batch's Spark job (read, enrich, insert everything)",
        (*PARTS, "rollups", "commit"),
    )
    for step in doc["steps"]:
        parts, phases = step["latency_s"]["parts"], step["batches"].get("phases", {})
        table.add_row(
            _name(step),
            *(_s(parts[p]["p50"]) for p in PARTS),
            _s(phases.get("rollups", {}).get("p50")),
            _s(phases.get("commit", {}).get("p50")),
        )
    return table


def targets_table(doc: dict[str, Any]) -> Table:
    summary = doc["summary"]
    table = Table(title="targets", box=box.SIMPLE_HEAD)
    for col in ("measure", "value", "target", "verdict"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for name, check in summary["targets"].items():
        verdict = "[green]met[/]" if check["met"] else "[red]missed[/]"
        probe = f" (probe {_s(check['probe'])})" if check.get("probe") is not None else ""
        value = f"{_s(check['measured'])} s{probe}"
        table.add_row(name, value, f"<= {check['target']:g} s", verdict)
    highest, failed = summary["max_sustained_rate"], summary["first_unsustained_rate"]
    met = highest is not None and highest >= SUSTAINED_TARGET
    table.add_row(
        "highest rate seen sustained",
        "-" if highest is None else f"{highest:,.0f}/s",
        f">= {SUSTAINED_TARGET:,}/s",
        ("[green]met[/]" if met else "[red]missed[/]")
        + ("" if failed is None else f", behind at {failed:,.0f}/s"),
    )
    model = summary.get("capacity", {})
    table.add_row(
        "throughput, full batches",
        _s(model.get("capacity_measured_per_s"), ",.0f") + "/s",
        "",
        f"model {_s(model.get('capacity_model_per_s'), ',.0f')}/s",
    )
    ceiling = summary.get("store_ceiling") or {}
    table.add_row(
        "store's insert ceiling",
        _s(ceiling.get("per_s"), ",.0f") + "/s",
        f">= {CEILING_SHARE_TARGET:g} of it",
        f"job at {_s(summary.get('vs_store_ceiling'))} of it",
    )
    table.add_row(
        "batch cost",
        f"{_s(model.get('fixed_s'))} s",
        "",
        f"+ {_s(model.get('per_record_ms'))} ms/record",
    )
    return table


# Orders/s with a flat backlog, every document kind written (issue 18; issue 7 aimed at 5,000
# and reached 3,000 on 2 cores, the FerretDB writer's ceiling).
SUSTAINED_TARGET = 3000
# The job's full-batch throughput over a bare `insert_many` loop of its documents (issue 18).
CEILING_SHARE_TARGET = 0.8


def missed(doc: dict[str, Any]) -> list[str]:
    """Missed targets, sender errors, orders never written, problems in the job's log."""
    summary = doc["summary"]
    found = [f"target {k} missed" for k, t in summary["targets"].items() if not t["met"]]
    tried = [s["rate"] for s in doc["steps"] if s.get("rate")]
    highest = summary["max_sustained_rate"]
    if any(r >= SUSTAINED_TARGET for r in tried) and (highest or 0) < SUSTAINED_TARGET:
        found.append(f"{SUSTAINED_TARGET:,} orders/s not sustained (highest {highest or 0:,.0f}/s)")
    share = summary.get("vs_store_ceiling")
    if share is not None and share < CEILING_SHARE_TARGET:
        found.append(
            f"full batches at {share:.2f} of the store's insert ceiling "
            f"(goal {CEILING_SHARE_TARGET:g})"
        )
    for step in doc["steps"]:
        sender, lat = step["sender"], step["latency_s"]
        if sender["errors"] or sender["non_202"]:
            found.append(f"{_name(step)}: {sender['errors']} errors {sender['error_samples']}")
        if lat["missing"] or lat["unmatched"]:
            found.append(
                f"{_name(step)}: {lat['missing']} acknowledged orders not in MongoDB, "
                f"{lat['unmatched']} in an unknown batch"
            )
    log = doc["job"]["log"]
    if log.get("problem_lines"):
        found.append(f"the job logged {log['problem_lines']} warning/error lines (job.log)")
    if doc["skipped_rates"]:
        found.append(f"rates skipped to stay within the time budget: {doc['skipped_rates']}")
    return found
