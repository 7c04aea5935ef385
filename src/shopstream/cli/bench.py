"""`shopstream bench ingest`: the ingestion benchmark (see docs/benchmarks.md).

The harness lives in the checkout's `bench/` folder, next to its results, and is not
shipped in the package; this command finds it there.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import typer

from shopstream.cli.common import console, fail, load_settings

__all__ = ["register"]

BENCH_DIR = Path(__file__).resolve().parents[3] / "bench"
DEFAULT_OUTPUT = BENCH_DIR / "results" / "ingest.json"


def _harness(module: str) -> ModuleType:
    if not (BENCH_DIR / "shopstream_bench").is_dir():
        fail(f"the benchmark harness is not at {BENCH_DIR}; run it from a source checkout")
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    return importlib.import_module(f"shopstream_bench.{module}")


def cmd_ingest(
    duration: float = typer.Option(10.0, min=1, max=600, help="Seconds measured per scenario."),
    warmup: float = typer.Option(2.0, min=0, max=60, help="Seconds of load before measuring."),
    prime: float = typer.Option(
        20.0, min=0, max=600, help="Seconds of unmeasured API traffic first (warms the broker)."
    ),
    concurrency: int = typer.Option(
        32, min=1, max=1024, help="Connections for (a) and (b), one request in flight each."
    ),
    batch_size: int = typer.Option(500, min=1, max=1000, help="Orders per POST /orders."),
    batch_concurrency: int = typer.Option(4, min=1, max=256, help="Connections for (c)."),
    orders: int = typer.Option(
        50_000, min=1000, max=1_000_000, help="Distinct orders generated (then cycled)."
    ),
    output: Path = typer.Option(DEFAULT_OUTPUT, help="Where to write the results (JSON)."),
    check: bool = typer.Option(False, help="Exit 1 when a target is missed or errors occurred."),
) -> None:
    """Measure the ingestion API on an isolated stack: bare app, /order, /orders, bare producer."""
    settings = load_settings()
    ingest, report = _harness("ingest"), _harness("report")
    opts = ingest.IngestOptions(
        duration=duration,
        warmup=warmup,
        prime=prime,
        concurrency=concurrency,
        batch_size=batch_size,
        batch_concurrency=batch_concurrency,
        orders=max(orders, batch_size),
    )
    try:
        doc = ingest.run_ingest(settings, opts, console.print)
    except (RuntimeError, OSError) as exc:  # StackError, BenchError, refused connections
        fail(str(exc))
    report.write_json(doc, output)
    console.print(report.scenario_table(doc))
    console.print(report.ratios_table(doc))
    console.print(f"results: {output}")
    problems = report.missed(doc)
    for problem in problems:
        console.print(f"[yellow]{problem}[/]")
    if check and problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    bench = typer.Typer(help="Benchmarks (results in bench/results/).", no_args_is_help=True)
    bench.command("ingest")(cmd_ingest)
    app.add_typer(bench, name="bench")
