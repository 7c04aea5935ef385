"""`shopstream demo` and `shopstream tail`: watch orders flow into Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import typer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from shopstream.cli.common import console, fail, load_settings
from shopstream.cli.sim import SimOptions, run_simulation
from shopstream.cli.stack import start_stack
from shopstream.config import Settings
from shopstream.domain.windows import Span
from shopstream.messaging.tail import TailRecord, tail
from shopstream.simulator import seed
from shopstream.store.ferretdb import open_store
from shopstream.store.protocols import RollupQueries, Store
from shopstream.streaming.committed import committed_files, read_watermark

__all__ = ["register"]


def _describe(rec: TailRecord) -> str:
    try:
        event = orjson.loads(rec.value or b"")
        items = event["items"]
        units = sum(i["quantity"] for i in items)
        return (
            f"p{rec.partition}@{rec.offset:<7} order {event['order_id'][:8]} "
            f"customer {event['customer_id']:<6} {len(items)} item(s), {units} unit(s) "
            f"at {event['created_at'][11:19]}"
        )
    except (ValueError, KeyError, TypeError):
        return f"p{rec.partition}@{rec.offset:<7} (not an order event) {rec.value!r:.60}"


def cmd_tail(
    topic: str = typer.Argument(None, help="Topic to follow (default: the orders topic)."),
    from_beginning: bool = typer.Option(False, help="Start at the oldest record."),
    limit: int = typer.Option(0, min=0, help="Stop after N records (0 = follow forever)."),
    raw: bool = typer.Option(False, help="Print record values as they are."),
) -> None:
    """Print records of a topic as they arrive."""
    settings = load_settings()
    seen = 0
    try:
        for rec in tail(settings.kafka_servers, topic or settings.orders_topic, from_beginning):
            typer.echo((rec.value or b"").decode(errors="replace") if raw else _describe(rec))
            seen += 1
            if limit and seen >= limit:
                return
    except KeyboardInterrupt:
        return
    except RuntimeError as exc:
        fail(str(exc))


class _Watcher(threading.Thread):
    """Follows the orders topic in the background, for the demo's live panel."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True, name="demo-tail")
        self.bootstrap, self.topic = bootstrap, topic
        self.count = 0
        self.recent: deque[str] = deque(maxlen=8)

    def run(self) -> None:
        for rec in tail(self.bootstrap, self.topic, from_beginning=False):
            self.count += 1
            self.recent.appendleft(_describe(rec))


class _Sinks(threading.Thread):
    """What the streaming job has written, every few seconds, read from the small rollup and
    ledger collections (counting `orders` itself would scan it on FerretDB)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="demo-sinks")
        self.settings = settings
        self.rows: list[tuple[str, str]] = [("streaming job", "waiting for its first batch")]

    def run(self) -> None:
        store = open_store(self.settings, app="shopstream-demo", timeout_s=5)
        reader = store.rollups.reader(self.settings.clock.zone, closed_ttl_s=0)
        while True:
            try:
                self.rows = self._read(store, reader)
            except Exception as exc:  # the demo keeps running; the panel shows why
                self.rows = [("MongoDB", f"unavailable ({type(exc).__name__}: {exc})")]
            time.sleep(3)

    def _read(self, store: Store, reader: RollupQueries) -> list[tuple[str, str]]:
        clock = self.settings.clock
        now = clock.now()
        total = reader.all_time()
        today = reader.kpis("today", now).current
        last_minute = (now - timedelta(minutes=1)).replace(second=0, microsecond=0)
        minute = reader.totals(Span(last_minute, last_minute + timedelta(minutes=1)), now)
        batch = store.status.last_batches()
        lake = f"{self.settings.lake}/orders"
        mark = read_watermark(lake, self.settings)
        return [
            ("enriched orders in MongoDB", f"{total.orders:,} from {total.customers:,} customers"),
            (
                f"today ({self.settings.business_timezone})",
                f"{today.orders:,} orders, ${today.sales_cents / 100:,.2f}, "
                f"{today.customers:,} customers",
            ),
            (
                "last full minute",
                f"{minute.orders:,} orders, ${minute.sales_cents / 100:,.2f}",
            ),
            ("dead letters", f"{sum(store.status.dead_letter_counts().values()):,}"),
            ("raw Parquet files the lake's log names", f"{len(committed_files(lake)):,}"),
            ("lake complete through", mark["complete_through"] if mark else "-"),
            (
                "last micro-batch",
                f"{batch.records:,} records in {batch.duration_s:.2f} s"
                if batch.duration_s is not None
                else "-",
            ),
            ("demand spikes (Airflow)", _spike_line(store, now, clock.zone)),
        ]


def _spike_line(store: Store, now: datetime, tz: ZoneInfo) -> str:
    days = store.spikes.detected_days()
    today = store.spikes.emerging(now.astimezone(tz).date().isoformat())
    if not days:
        return "no day detected yet (the daily DAG waits for complete days)"
    latest = next(iter(days))
    found = sum(days.values())
    line = f"{len(days)} day(s) detected, {found} spike(s); latest {latest}: {days[latest]}"
    if today is not None:
        line += f"; today {today.count} emerging"
    return line


def cmd_demo(
    rate: float = typer.Option(20.0, min=0.1, help="Live orders per second."),
    duration: float = typer.Option(0, min=0, help="Seconds to run (0 = until Ctrl-C)."),
    history_days: int = typer.Option(
        30, min=0, help="Days of history to backfill first (Airflow detects their spikes)."
    ),
) -> None:
    """Start the stack, seed it, backfill some history, then stream live orders through it."""
    settings = load_settings()
    if history_days and settings.spike_start_date is None:
        # Airflow's daily spike DAG catches up from the first backfilled day.
        first = settings.clock.today() - timedelta(days=history_days)
        settings = settings.model_copy(update={"spike_start_date": first})
    if settings.dashboard_enabled:
        console.print(f"[bold]Dashboard: {settings.dashboard_url}[/bold] (live once it is up)")
    start_stack(settings)
    result = seed(settings.postgres_url, 10_000, 1_000, 42)
    console.print(f"catalog: {result.products_total} products, {result.customers_total} customers")
    truth = settings.data_path / "spikes_truth.json"
    key = settings.api_key_list[0]
    if history_days:
        console.rule(f"backfilling {history_days} day(s) of history through POST /orders")
        # about one injected spike a day after the first two weeks (their ground truth is in
        # spikes_truth.json; `shopstream bench spikes` scores the detector against it)
        spikes = max(history_days - 14, 0)
        # and a store-wide sale five days ago (x1.8): the Demand spikes page's store event
        sale = (settings.clock.today() - timedelta(days=5)).isoformat()
        surge = (f"{sale}:1.8",) if history_days >= 21 else ()
        history = SimOptions(
            backfill_days=history_days, orders_per_day=3000, spikes=spikes, surge=surge
        )
        asyncio.run(run_simulation(settings, history, truth, key))
    console.rule(f"live: ~{rate:g} orders/s through POST /order -> Kafka '{settings.orders_topic}'")
    watcher = _Watcher(settings.kafka_servers, settings.orders_topic)
    watcher.start()
    sinks = _Sinks(settings)
    sinks.start()
    started = datetime.now(UTC)

    def render() -> Panel:
        table = Table.grid(padding=(0, 2))
        elapsed = (datetime.now(UTC) - started).total_seconds()
        table.add_row("records read back from Kafka", f"{watcher.count:,}")
        table.add_row("rate", f"{watcher.count / max(elapsed, 1e-9):,.1f}/s")
        if settings.stream_enabled:
            for label, value in sinks.rows:
                table.add_row(label, value)
        body = Group(table, "", *watcher.recent)
        title = "orders flowing: API -> Kafka -> Spark (Ctrl-C to stop)"
        if settings.dashboard_enabled:
            title += f" · dashboard {settings.dashboard_url}"
        return Panel(body, title=title)

    async def main() -> None:
        opts = SimOptions(rate=rate, duration=duration or None, show_progress=False)
        live_truth = truth.with_name("spikes_truth_live.json")
        sim = asyncio.create_task(run_simulation(settings, opts, live_truth, key))
        with Live(render(), console=console, refresh_per_second=4) as live:
            while not sim.done():
                live.update(render())
                await asyncio.sleep(0.25)
        await sim

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    console.print(
        f"demo stopped; the stack keeps running (`shopstream down` stops it). "
        f"API docs: {settings.api_url}/docs"
    )


def register(app: typer.Typer) -> None:
    app.command("tail")(cmd_tail)
    app.command("demo")(cmd_demo)
