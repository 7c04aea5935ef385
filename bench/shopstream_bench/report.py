"""Presenting a results document: a rich table, the ratios against targets, the JSON file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

__all__ = ["missed", "ratios_table", "scenario_table", "write_json"]


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None or math.isnan(value) else format(value, fmt)


def _cores(cpu: dict[str, float], name: str) -> str:
    return _num(cpu[name], ".2f") if name in cpu else "-"


def scenario_table(doc: dict[str, Any]) -> Table:
    opts, machine = doc["options"], doc["machine"]
    table = Table(
        title="shopstream ingestion benchmark",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption=(
            f"{opts['warmup']:g}s warm-up + {opts['duration']:g}s per scenario on "
            f"{machine['nproc']} CPUs. CPU: cores busy (srv = uvicorn process, kfk = broker, "
            f"cli = load generator; in d, the producer); µs/order: CPU of srv (d: cli). "
            f"A red scenario had errors."
        ),
    )
    table.add_column("scenario", no_wrap=True)
    for col in ("orders/s", "p50 ms", "p99 ms", "CPU srv/kfk/cli"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("µs/order", justify="right")
    for key, m in doc["scenarios"].items():
        cpu, per_order = m["cpu_cores"], m["cpu_us_per_order"]
        cores = "/".join(_cores(cpu, name) for name in ("server", "kafka", "client"))
        style = "red" if m["errors"] else ""  # the reasons are listed under the tables
        table.add_row(
            f"[{style}]({key}) {m['title']}[/]" if style else f"({key}) {m['title']}",
            _num(m["orders_per_s"]),
            _num(m["p50_ms"], ".1f"),
            _num(m["p99_ms"], ".1f"),
            cores,
            _num(per_order.get("server", per_order.get("client")), ",.1f"),
        )
    return table


def ratios_table(doc: dict[str, Any]) -> Table:
    table = Table(title="ratios and targets", box=box.SIMPLE_HEAD)
    for col in ("measure", "value", "target", "verdict"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    targets = doc["targets"]
    b_a = targets["b_over_a"]
    table.add_row(
        "b/a (POST /order vs bare)",
        f"{b_a['measured']:.2f}",
        f">= {b_a['target']:g}",
        _verdict(b_a),
    )
    c = targets["c_orders_per_s"]
    table.add_row(
        "c orders/s (POST /orders)", _num(c["measured"]), f">= {c['target']:,.0f}", _verdict(c)
    )
    table.add_row("c/d (POST /orders vs bare producer)", f"{doc['ratios']['c_over_d']:.2f}", "", "")
    return table


def _verdict(target: dict[str, Any]) -> str:
    return "[green]met[/]" if target["met"] else "[red]missed[/]"


def missed(doc: dict[str, Any]) -> list[str]:
    """Why the run falls short: missed targets and scenarios with errors."""
    found = [f"target {k} missed" for k, t in doc["targets"].items() if not t["met"]]
    found += [
        f"scenario {k} had {m['errors']} error(s): {m['error_samples'][:2]} {m['outcomes']}"
        for k, m in doc["scenarios"].items()
        if m["errors"]
    ]
    return found


def write_json(doc: dict[str, Any], path: Path) -> None:
    """Writes atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_json_safe(doc), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def _json_safe(value: Any) -> Any:
    """NaN (nothing measured) becomes null, which JSON can hold."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
