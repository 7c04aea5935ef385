"""`shopstream bench ingest|stream|soak|dashboard|...` (see docs/benchmarks.md).

The harness lives in the checkout's `bench/` folder, next to its results, and is not
shipped in the package; this command finds it there.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import typer
from rich.table import Table

from shopstream.cli.common import console, fail, load_settings
from shopstream.config import Settings
from shopstream.simulator import seed
from shopstream.store.customer_history import drop_store
from shopstream.store.ferretdb import open_store
from shopstream.store.protocols import Store

__all__ = ["register"]

BENCH_DIR = Path(__file__).resolve().parents[3] / "bench"
DEFAULT_OUTPUT = BENCH_DIR / "results" / "ingest.json"
STREAM_OUTPUT = BENCH_DIR / "results" / "stream.json"
SOAK_OUTPUT = BENCH_DIR / "results" / "soak.json"
DASHBOARD_OUTPUT = BENCH_DIR / "results" / "dashboard.json"
DASHBOARD_SOAK_OUTPUT = BENCH_DIR / "results" / "dashboard-soak.json"
SPIKES_OUTPUT = BENCH_DIR / "results" / "spikes.json"
SPIKE_STORES_OUTPUT = BENCH_DIR / "results" / "spike-quality-stores.json"
CHAOS_OUTPUT = BENCH_DIR / "results" / "chaos.json"


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
    tables = (report.scenario_table(doc), report.ratios_table(doc))
    _show(tables, output, report.missed(doc), check)


def _show(tables: Iterable[object], output: Path, problems: list[str], check: bool) -> None:
    """Prints a benchmark's tables and missed targets; with `check`, a miss exits 1."""
    for table in tables:
        console.print(table)
    console.print(f"results: {output}")
    for problem in problems:
        console.print(f"[yellow]{problem}[/]")
    if check and problems:
        raise typer.Exit(1)


def _rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(r) for r in text.split(",") if r.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated orders/s, got {text!r}") from None
    if any(r <= 0 for r in rates):
        raise typer.BadParameter("rates must be positive")
    return rates


def cmd_stream(
    rates: str = typer.Option(
        "200,1000,5000", help="Rates (orders/s) measured with the long window."
    ),
    duration: float = typer.Option(60.0, min=5, max=600, help="Seconds measured per rate."),
    warmup: float = typer.Option(10.0, min=0, max=120, help="Seconds of load before measuring."),
    ladder: str = typer.Option(
        "1500,2000,2500,3000,3500,4000,4500",
        help="Rates tried, ascending, between the highest sustained and the lowest failed so "
        "far, to find the highest the job sustains ('' for none).",
    ),
    ladder_duration: float = typer.Option(30.0, min=5, max=300, help="Seconds per ladder rate."),
    baseline_rate: float = typer.Option(10.0, min=0.5, max=100, help="Low rate: the floor."),
    baseline_duration: float = typer.Option(30.0, min=5, max=300, help="Seconds of baseline."),
    prime: float = typer.Option(
        180.0,
        min=0,
        max=600,
        help="Seconds of unmeasured load first (the JVM compiles its hot code for ~3 minutes).",
    ),
    trigger: float = typer.Option(
        0.5, min=0.001, max=60, help="The job's trigger (SHOPSTREAM_STREAM_TRIGGER_S) for this run."
    ),
    probe_rate: float = typer.Option(
        4.0, min=0, max=50, help="Orders/s sampled for direct find_one polling (0: none)."
    ),
    budget: float = typer.Option(
        1080.0, min=60, max=3600, help="Seconds after the start by which steps must end."
    ),
    spark_events: bool = typer.Option(
        True, help="Have the job write Spark's event log (progress, jobs) for the breakdown."
    ),
    output: Path = typer.Option(STREAM_OUTPUT, help="Where to write the results (JSON)."),
    check: bool = typer.Option(False, help="Exit 1 when a target is missed or errors occurred."),
) -> None:
    """Measure end-to-end latency (API 202 -> order in MongoDB) and the highest sustained rate."""
    settings = load_settings()
    stream, report, stream_report = (
        _harness("stream"),
        _harness("report"),
        _harness("stream_report"),
    )
    opts = stream.StreamOptions(
        rates=_rates(rates),
        duration=duration,
        warmup=warmup,
        ladder=_rates(ladder),
        ladder_duration=ladder_duration,
        baseline_rate=baseline_rate,
        baseline_duration=baseline_duration,
        prime=prime,
        trigger_s=trigger,
        probe_per_s=probe_rate,
        budget_s=budget,
        spark_events=spark_events,
    )
    try:
        doc = stream.run_stream(settings, opts, console.print)
    except (RuntimeError, OSError) as exc:  # StackError, refused connections
        fail(str(exc))
    report.write_json(doc, output)
    tables = (
        stream_report.latency_table(doc),
        stream_report.job_table(doc),
        stream_report.parts_table(doc),
        stream_report.targets_table(doc),
    )
    _show(tables, output, stream_report.missed(doc), check)


def cmd_soak(
    rate: float = typer.Option(200.0, min=1, max=5000, help="Live orders/s (the simulator)."),
    minutes: float = typer.Option(30.0, min=2, max=24 * 60, help="How long to run."),
    interval: float = typer.Option(60.0, min=5, max=600, help="Seconds between samples."),
    backfill_days: int = typer.Option(
        3, min=0, max=60, help="Days of the demo's history sent first (3,000 orders a day)."
    ),
    attach: bool = typer.Option(
        False, help="Sample the stack of the current settings (e.g. `make demo`), adding no load."
    ),
    output: Path = typer.Option(SOAK_OUTPUT, help="Where to write the results (JSON)."),
    check: bool = typer.Option(False, help="Exit 1 unless the job stayed flat."),
) -> None:
    """Run the streaming job for a long time under the demo's workload; is it flat?"""
    settings = load_settings()
    soak, report, machine = _harness("soak"), _harness("report"), _harness("machine")
    code = machine.code_version()
    opts = soak.SoakOptions(
        rate=rate, duration_s=minutes * 60, interval_s=interval, attach=attach,
        backfill_days=backfill_days, compare_s=min(600.0, minutes * 60 / 3),
    )  # fmt: skip
    try:
        doc = soak.run_soak(settings, opts, console.print)
    except (RuntimeError, OSError) as exc:
        fail(str(exc))
    report.write_json({"code": code, **doc}, output)
    console.print_json(data=doc["verdict"])
    console.print(f"results: {output}")
    if check and not doc["verdict"].get("flat"):
        raise typer.Exit(1)


def cmd_dashboard(
    orders: int = typer.Option(5_000_000, min=1000, help="Orders in the store."),
    days: int = typer.Option(90, min=1, max=3650, help="Days they span (ending now)."),
    customers: int = typer.Option(200_000, min=10, help="Customers (seeded in PostgreSQL too)."),
    chunk: int = typer.Option(
        500_000, min=1000, help="Orders per write batch (the job's catch-up batches)."
    ),
    database: str = typer.Option("bench_dashboard", help="The MongoDB database of the store."),
    build: bool = typer.Option(True, help="Build the store first (--no-build: reuse it)."),
    refreshes: int = typer.Option(60, min=5, help="Refreshes measured per page and window."),
    output: Path = typer.Option(DASHBOARD_OUTPUT, help="Where to write the results (JSON)."),
) -> None:
    """Build a store of millions of orders with the job's writers; time every page's reads."""

    settings = load_settings().model_copy(update={"mongo_database": database})
    dash, report, machine = _harness("dashboard"), _harness("report"), _harness("machine")
    # What the built store holds, for `--no-build` runs (a file: the store is only the job's).
    meta = settings.data_path / "bench" / f"{database}.json"
    doc: dict[str, Any] = {"machine": machine.describe_machine(), "code": machine.code_version()}
    store = open_store(settings, app="shopstream-bench")
    if build:
        store.drop()
        with psycopg.connect(settings.postgres_url, autocommit=True) as conn:
            drop_store(conn, database)
        seed(settings.postgres_url, customers, 1_000, 42)
        end = datetime.now(UTC).replace(microsecond=0)
        spec = dash.StoreSpec(orders=orders, days=days, customers=customers, chunk=chunk)
        doc["build"] = dash.build_store(settings, spec, end, console.print)
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps(doc["build"]))
    elif not meta.exists():
        fail(f"no store in {database}: run without --no-build first")
    else:
        doc["build"] = json.loads(meta.read_text())
    now = datetime.fromisoformat(doc["build"]["end"])
    with psycopg.connect(settings.postgres_url, autocommit=True) as conn:
        doc["pages"] = dash.time_pages(
            store, conn, settings.clock.zone, now, refreshes,
            settings.dashboard_refresh_s, settings.dashboard_cache_s, customers,
        )  # fmt: skip
    store.close()
    report.write_json(doc, output)
    console.print_json(data=doc["pages"])
    console.print(f"results: {output}")


def cmd_dashboard_soak(
    minutes: float = typer.Option(65.0, min=1, help="How long the tab stays open."),
    interval: float = typer.Option(30.0, min=5, help="Seconds between RSS samples."),
    page: str = typer.Option("", help="The page's URL path ('' = Overview, 'health', ...)."),
    output: Path = typer.Option(DASHBOARD_SOAK_OUTPUT, help="Where to write the results."),
) -> None:
    """Keep one browser tab on the running dashboard; sample the server's RSS (make demo)."""
    settings = load_settings()
    soak, report = _harness("dashboard_soak"), _harness("report")
    try:
        doc = soak.run_dashboard_soak(settings, minutes, interval, page, console.print)
    except RuntimeError as exc:
        fail(str(exc))
    report.write_json(doc, output)
    console.print_json(data=doc["verdict"])
    console.print(f"results: {output}")


@contextmanager
def _scratch_store(settings: Settings, database: str) -> Iterator[Store]:
    """An empty store in database `database`, dropped afterwards."""
    store = open_store(settings.model_copy(update={"mongo_database": database}), "shopstream-bench")
    store.drop()
    try:
        yield store
    finally:
        store.drop()
        store.close()


def cmd_spikes(
    part: str = typer.Option(
        "all",
        help="quality: the rules on three simulated stores (300 to 30,000 orders a day; pure, "
        "no database); model: the simulator's demand model through the rollups (a running "
        "stack; was 'quality' before issue 21); scale: one day's run at scale (a running "
        "stack); all: the three.",
    ),
    seeds: int = typer.Option(3, min=1, max=100, help="Seeds per store (quality)."),
    stores: str = typer.Option("small,mid,large", help="The stores scored (quality)."),
    quality_output: Path = typer.Option(
        SPIKE_STORES_OUTPUT, help="Where the quality part writes its results (JSON)."
    ),
    model_days: int = typer.Option(60, min=20, help="Simulated days scored (model)."),
    products: int = typer.Option(10_000, min=100, help="Products of the scale run."),
    history_days: int = typer.Option(365, min=30, help="Days of history of the scale run."),
    database: str = typer.Option("bench_spikes", help="A scratch MongoDB database prefix."),
    output: Path = typer.Option(SPIKES_OUTPUT, help="Where model and scale write (JSON)."),
) -> None:
    """The spike detector: quality on simulated stores and injected spikes, a day's run at scale."""
    if part not in ("all", "quality", "model", "scale"):
        fail("--part is quality, model, scale or all")
    spikes, report = _harness("spikes"), _harness("report")
    if part in ("all", "quality"):
        _spike_stores(spikes, report, seeds, stores, quality_output)
    if part in ("all", "model", "scale"):
        _spikes_on_stack(spikes, report, part, model_days, products, history_days, database, output)


def _spike_stores(
    spikes: ModuleType, report: ModuleType, seeds: int, stores: str, output: Path
) -> None:
    """The quality part: pure, so no settings and no stack."""
    machine = _harness("machine")
    try:
        specs = spikes.store_specs([name.strip() for name in stores.split(",") if name.strip()])
    except ValueError as exc:  # an unknown store
        fail(str(exc))
    doc: dict[str, Any] = {"machine": machine.describe_machine(), "code": machine.code_version()}
    started = time.monotonic()
    result = spikes.stores(seeds, specs, console.print)
    doc.update(seconds=round(time.monotonic() - started, 1), **result)
    report.write_json(doc, output)
    for store in doc["stores"]:
        console.print(spikes.stores_table(store, doc["oracle_alpha"]))
    console.print(f"{doc['seconds']:.0f} s; results: {output}")


def _spikes_on_stack(
    spikes: ModuleType,
    report: ModuleType,
    part: str,
    model_days: int,
    products: int,
    history_days: int,
    database: str,
    output: Path,
) -> None:
    """The model and scale parts (a running stack)."""
    settings = load_settings()
    machine = _harness("machine")
    utc = ZoneInfo("UTC")
    doc: dict[str, Any] = {
        "machine": machine.describe_machine(),
        "code": machine.code_version(),
        "quality": [],  # the model part's (its key since issue 9)
        "scale": [],
    }
    datasets = [  # the demo's shape (where issue 9 chose its rule), then a fresh seed and rate
        {"products": 1_000, "orders_per_day": 3_000, "seed": 42},
        {"products": 1_000, "orders_per_day": 5_000, "seed": 7},
    ]
    if output.exists():  # keep the other part's last results
        previous = json.loads(output.read_text())
        doc["quality"], doc["scale"] = previous.get("quality", []), previous.get("scale", [])
    model = part in ("all", "model")
    if model:
        doc["quality"] = []
    for i, data in enumerate(datasets if model else []):
        spikes_n = model_days - 14  # about one a day after the quiet fortnight
        with _scratch_store(settings, f"{database}_q{i}") as store:
            doc["quality"].append(
                spikes.quality(
                    store, utc, days=model_days, spikes=spikes_n, report=console.print, **data
                )
            )
    if part in ("all", "scale"):
        doc["scale"] = []
    for count in (1_000, products) if part in ("all", "scale") else ():  # 1,000: baseline
        with _scratch_store(settings, f"{database}_s{count}") as store:
            doc["scale"].append(spikes.scale(store, count, history_days, utc, console.print))
    report.write_json(doc, output)
    for q in doc["quality"]:
        for r in q["rules"]:
            console.print(f"{r['rule']:48} P {r['precision']:.3f} R {r['recall']:.3f} "
                          f"false alarms/day {r['false_alarms_per_day']:.2f}")  # fmt: skip
    console.print_json(data=[s["one_day_run"] for s in doc["scale"]])
    console.print(f"results: {output}")


WAREHOUSE_OUTPUT = Path("bench/results/warehouse.json")


def cmd_warehouse(
    orders: int = typer.Option(1_000_000, min=1_000, help="Orders in the lake day."),
    files: int = typer.Option(8_640, min=1, help="Lake files (8,640: one per 10 s batch)."),
    output: Path = typer.Option(WAREHOUSE_OUTPUT, help="Where to write the results (JSON)."),
) -> None:
    """One lake day of ORDERS into the warehouse: each step timed, against a DuckDB scan."""

    settings = load_settings()
    harness, report, machine = _harness("warehouse"), _harness("report"), _harness("machine")
    with tempfile.TemporaryDirectory(prefix="shopstream-bench-wh-") as tmp:
        try:
            result = harness.run(settings, Path(tmp), orders, files, console.print)
        except RuntimeError as exc:
            fail(str(exc))
    doc = {"machine": machine.describe_machine(), "code": machine.code_version(), "runs": [result]}
    if output.exists():  # keep earlier runs of other sizes
        earlier = json.loads(output.read_text()).get("runs", [])
        doc["runs"] = [r for r in earlier if (r["orders"], r["files"], r["warehouse"]) !=
                       (orders, files, settings.warehouse)] + [result]  # fmt: skip
    report.write_json(doc, output)
    console.print(f"results: {output}")


WAREHOUSE_YEAR_OUTPUT = Path("bench/results/warehouse_year.json")


def cmd_warehouse_year(
    days: int = typer.Option(365, min=40, help="Lake days."),
    orders: int = typer.Option(3_000, min=10, help="Orders a day (the demo's ~3,000)."),
    head: int = typer.Option(12, min=5, help="Days loaded one run each at the start."),
    tail: int = typer.Option(5, min=3, help="...and at the end."),
    output: Path = typer.Option(WAREHOUSE_YEAR_OUTPUT, help="Where to write the results."),
) -> None:
    """A year of small lake days: each single-day run at the start and the end timed (is the
    365th as cheap as the 10th?), the middle loaded as catch-up runs."""
    settings = load_settings()
    harness, report, machine = (
        _harness("warehouse_year"), _harness("report"), _harness("machine")
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="shopstream-bench-year-") as tmp:
        try:
            result = harness.run(settings, Path(tmp), days, orders, head, tail, console.print)
        except RuntimeError as exc:
            fail(str(exc))
    doc = {"machine": machine.describe_machine(), "code": machine.code_version(), **result}
    report.write_json(doc, output)
    console.print(f"results: {output}")


HISTORY_OUTPUT = Path("bench/results/history.json")


def cmd_history(
    orders: int = typer.Option(1_000_000, min=1_000, help="Orders to import."),
    days: int = typer.Option(365, min=1, help="Business days they are spread over."),
    max_offsets: int = typer.Option(
        0, help="The enrichment's records per micro-batch (0: the setting's default)."
    ),
    output: Path = typer.Option(HISTORY_OUTPUT, help="Where to write the results (JSON)."),
) -> None:
    """A history import: ORDERS orders over DAYS past days produced to the topic, oldest
    first, and the time until the streaming job has written them everywhere, checked."""
    settings = load_settings()
    harness, report, machine = _harness("history"), _harness("report"), _harness("machine")
    overrides = {"stream_max_offsets_per_trigger": max_offsets} if max_offsets else {}
    try:
        result = harness.run(settings, orders, days, console.print, **overrides)
    except RuntimeError as exc:
        fail(str(exc))
    doc = {"machine": machine.describe_machine(), "code": machine.code_version(), "runs": [result]}
    if output.exists():  # keep earlier runs of other sizes
        doc["runs"] = [*json.loads(output.read_text()).get("runs", []), result]
    report.write_json(doc, output)
    console.print(f"results: {output}")


def cmd_chaos(
    scenarios: list[str] = typer.Argument(
        None,
        help="Scenarios to run (default: all): broker-leader, two-brokers, broker-stopped, "
        "store-killed, postgres-restarted, airflow-task-killed.",
    ),
    rate: float = typer.Option(200.0, min=1, max=2000, help="Orders/s of the open-loop load."),
    output: Path = typer.Option(CHAOS_OUTPUT, help="Where to write the results (JSON)."),
) -> None:
    """Faults under load on throw-away stacks, each reconciled from the sources (make chaos)."""
    chaos = _harness("chaos")
    names = scenarios or list(chaos.SCENARIOS)
    unknown = [n for n in names if n not in chaos.SCENARIOS]
    if unknown:
        fail(f"unknown scenario(s) {unknown}; known: {', '.join(chaos.SCENARIOS)}")
    results = chaos.run_chaos(load_settings(), names, rate, output, console.print)
    table = Table(title="shopstream chaos")
    for col in ("scenario", "load", "acked", "lost", "doubled", "max 503 s", "p99 202 s",
                "recovery s", "restarts", "result"):  # fmt: skip
        table.add_column(col)
    for r in results:
        table.add_row(
            r.scenario, r.load, str(r.acked), str(r.lost), str(r.doubled),
            str(r.max_503_s or "-"), str(r.p99_202_during_s or "-"), str(r.recovery_s or "-"),
            str(r.stream_restarts), "[green]passed[/]" if r.passed else "[red]FAILED[/]",
        )  # fmt: skip
    console.print(table)
    for r in results:
        for line in r.problems:
            console.print(f"[red]{r.scenario}: {line}[/]")
    console.print(f"results: {output}")
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("chaos")(cmd_chaos)
    bench = typer.Typer(help="Benchmarks (results in bench/results/).", no_args_is_help=True)
    bench.command("ingest")(cmd_ingest)
    bench.command("stream")(cmd_stream)
    bench.command("soak")(cmd_soak)
    bench.command("dashboard")(cmd_dashboard)
    bench.command("dashboard-soak")(cmd_dashboard_soak)
    bench.command("spikes")(cmd_spikes)
    bench.command("warehouse")(cmd_warehouse)
    bench.command("warehouse-year")(cmd_warehouse_year)
    bench.command("history")(cmd_history)
    app.add_typer(bench, name="bench")
