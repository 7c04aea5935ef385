"""`shopstream seed | simulate`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shopstream.cli.common import console, fail, load_settings
from shopstream.config import Settings
from shopstream.simulator import DemandModel, plan_spikes, seed
from shopstream.simulator.runner import (
    Signups,
    backfill,
    backfill_days,
    live,
    load_catalog,
    parse_spike,
    parse_surge,
    write_truth,
)
from shopstream.simulator.sender import OrderSender, SendStats

__all__ = ["SimOptions", "register", "run_simulation"]


def cmd_seed(
    customers: int = typer.Option(10_000, min=1, help="Customers to ensure (ids 1..N)."),
    products: int = typer.Option(1_000, min=1, help="Products to ensure (ids 1..N)."),
    seed_value: int = typer.Option(42, "--seed", help="Same seed, same rows."),
) -> None:
    """Load the simulated catalog and customers into PostgreSQL (rerunnable, no duplicates)."""
    settings = load_settings()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        tasks = {
            "products": progress.add_task("products", total=products),
            "customers": progress.add_task("customers", total=customers),
        }
        result = seed(
            settings.postgres_url,
            customers,
            products,
            seed_value,
            progress=lambda table, n: progress.advance(tasks[table], n),
        )
    console.print(
        f"customers: {result.customers_inserted} new, {result.customers_total} in total; "
        f"products: {result.products_inserted} new, {result.products_total} in total"
    )


def _summary(stats: SendStats, truth: Path) -> Table:
    table = Table(title="simulation summary")
    for col in ("sent", "accepted", "rejected", "retries", "elapsed", "accepted/s"):
        table.add_column(col, justify="right")
    table.add_row(
        str(stats.sent),
        str(stats.accepted),
        str(stats.rejected),
        str(stats.retries),
        f"{stats.elapsed:.1f}s",
        f"{stats.rate:,.0f}",
    )
    table.caption = f"spike ground truth: {truth}"
    return table


@dataclass(frozen=True)
class SimOptions:
    """What `simulate` (and the demo) should send."""

    rate: float = 20.0
    duration: float | None = None
    backfill_days: int = 0
    orders_per_day: float = 5000
    spikes: int = 3
    spike: tuple[str, ...] = ()
    surge: tuple[str, ...] = ()  # YYYY-MM-DD:FACTOR: the whole store's orders x FACTOR that day
    seed: int = 42
    signups_per_day: float = 200
    concurrency: int = 8
    show_progress: bool = True


async def run_simulation(
    settings: Settings, opts: SimOptions, truth: Path, api_key: str
) -> SendStats:
    products, customers = await asyncio.to_thread(load_catalog, settings.postgres_url)
    clock = settings.clock
    model = DemandModel(
        products, customers, opts.orders_per_day, opts.seed, settings.business_timezone
    )
    if not opts.backfill_days:
        # Start at exactly `rate`; seasonality then moves it as the hours pass.
        model.calibrate(opts.rate, clock.now())
    days = (
        backfill_days(clock.today(), opts.backfill_days) if opts.backfill_days else [clock.today()]
    )
    # Keep the first two weeks of a backfill spike-free: a spike needs a history to stand out
    # (the detector judges a product after SHOPSTREAM_SPIKE_MIN_HISTORY_DAYS, 14 by default).
    model.surges = dict(parse_surge(s) for s in opts.surge)
    eligible = days[14:] if len(days) > 14 else days
    eligible = [d for d in eligible if d not in model.surges] or eligible  # truth stays clear
    explicit = tuple(parse_spike(s) for s in opts.spike)
    known = set(products.tolist())
    for s in explicit:
        if s.product_id not in known:
            raise ValueError(f"spike product {s.product_id} is not in the catalog")
    model.spikes = plan_spikes(products, eligible, opts.spikes, opts.seed) + explicit
    signups = Signups(settings.postgres_url, opts.signups_per_day, opts.seed)
    meta = {
        "seed": opts.seed,
        "timezone": settings.business_timezone,
        "orders_per_day": model.orders_per_day,
        "mode": "backfill" if opts.backfill_days else "live",
        "days": [d.isoformat() for d in days],
    }
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    async with OrderSender(settings.api_url, api_key, opts.concurrency) as sender:
        try:
            with Progress(*columns, console=console, disable=not opts.show_progress) as progress:
                if opts.backfill_days:
                    task = progress.add_task(
                        "backfill hours", total=opts.backfill_days * 24, info=""
                    )

                    def tick(stats: SendStats, msg: str) -> None:
                        progress.update(task, advance=1, info=_info(stats, msg))

                    await backfill(model, sender, signups, opts.backfill_days, clock, tick=tick)
                else:
                    task = progress.add_task("live orders", total=None, info="")

                    def tick_live(stats: SendStats, msg: str) -> None:
                        progress.update(task, completed=stats.accepted, info=_info(stats, msg))

                    await live(model, sender, signups, opts.duration, clock, tick=tick_live)
        finally:
            write_truth(truth, model, {**meta, "signups": signups.count})
        return sender.stats


def _info(stats: SendStats, msg: str) -> str:
    return f"{msg} | accepted {stats.accepted:,} rejected {stats.rejected:,} | {stats.rate:,.0f}/s"


def cmd_simulate(
    rate: float = typer.Option(20.0, min=0.01, help="Live mode: average orders per second."),
    duration: float = typer.Option(0, min=0, help="Live mode: seconds to run (0 = until Ctrl-C)."),
    backfill_days: int = typer.Option(0, min=0, help="Send N past days of history, then stop."),
    orders_per_day: float = typer.Option(5000, min=1, help="Backfill: average orders per day."),
    spikes: int = typer.Option(3, min=0, help="Random demand spikes to inject."),
    spike: list[str] = typer.Option([], help="Explicit spike PRODUCT_ID:YYYY-MM-DD:MULTIPLIER."),
    surge: list[str] = typer.Option(
        [], help="A store-wide surge YYYY-MM-DD:FACTOR (every product's orders x FACTOR)."
    ),
    seed_value: int = typer.Option(42, "--seed", help="Random seed (backfills are reproducible)."),
    signups_per_day: float = typer.Option(200, min=0, help="New customers per day."),
    truth: Path | None = typer.Option(None, help="Spike ground-truth file (JSON)."),
    api_key: str | None = typer.Option(None, help="API key (default: the first configured key)."),
    concurrency: int = typer.Option(8, min=1, help="Requests in flight."),
) -> None:
    """Send simulated orders through the API: live at a rate, or a backfill of past days."""
    settings = load_settings()
    truth = truth or settings.data_path / "spikes_truth.json"
    try:
        opts = SimOptions(
            rate,
            duration or None,
            backfill_days,
            orders_per_day,
            spikes,
            tuple(spike),
            tuple(surge),
            seed_value,
            signups_per_day,
            concurrency,
        )
        key = api_key or settings.api_key_list[0]
        stats = asyncio.run(run_simulation(settings, opts, truth, key))
    except KeyboardInterrupt:
        console.print("stopped")
        return
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    console.print(_summary(stats, truth))
    if stats.rejected:
        console.print(f"[yellow]first rejections:[/] {stats.rejections[:3]}")


def register(app: typer.Typer) -> None:
    app.command("seed")(cmd_seed)
    app.command("simulate")(cmd_simulate)
