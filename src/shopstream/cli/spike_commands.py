"""`shopstream spikes run | emerging | complete | show`: demand spikes (docs/spikes.md)."""

from __future__ import annotations

import getpass
from datetime import datetime, timedelta

import typer
from rich.markup import escape

from shopstream.cli.common import console, exit_on_sigterm, fail, load_settings, parse_day, store
from shopstream.spikes import rule_from
from shopstream.spikes.alerts import Outcome, send_daily, send_emerging
from shopstream.spikes.complete import day_complete
from shopstream.spikes.detector import run
from shopstream.spikes.intraday import refresh
from shopstream.store.leases import LeaseBusyError, LeaseLostError
from shopstream.store.records import LABELS

__all__ = ["register"]

spikes = typer.Typer(help="Detect demand spikes (a P95 rule per product).", no_args_is_help=True)


@spikes.callback()
def _batch() -> None:
    exit_on_sigterm()  # a stopped task releases what it holds


_LOOKBACK = typer.Option(
    None, "--lookback", help="Days of history (SHOPSTREAM_SPIKE_LOOKBACK_DAYS)."
)
_MIN_HISTORY = typer.Option(None, "--min-history", help="Fewest history days to judge a product.")
_MIN_UNITS = typer.Option(None, "--min-units", help="Fewest units on the day to call a spike.")
_MIN_ORDERS = typer.Option(None, "--min-orders", help="Fewest orders on the day to call a spike.")
_MARGIN = typer.Option(None, "--margin", help="Units must exceed MARGIN x P95.")
_WEEKDAY = typer.Option(None, "--weekday/--no-weekday", help="Weekday-aware baseline.")
_ALPHA = typer.Option(
    None, "--alpha", help="The noise test's significance; 0 turns it off (SHOPSTREAM_SPIKE_ALPHA)."
)
_STORE_MARGIN = typer.Option(
    None,
    "--store-margin",
    help="A store event above this store level; 0: none (SHOPSTREAM_SPIKE_STORE_MARGIN).",
)


@spikes.command("run")
def cmd_run(
    day: str = typer.Option(None, "--date", help="The business day (default: yesterday)."),
    first: str = typer.Option(None, "--from", help="First day of a range (with --to)."),
    last: str = typer.Option(None, "--to", help="Last day of a range (with --from)."),
    force: bool = typer.Option(False, help="Run even if the days are not complete yet."),
    lookback: int = _LOOKBACK,
    min_history: int = _MIN_HISTORY,
    min_units: int = _MIN_UNITS,
    min_orders: int = _MIN_ORDERS,
    margin: float = _MARGIN,
    weekday: bool = _WEEKDAY,
    alpha: float = _ALPHA,
    store_margin: float = _STORE_MARGIN,
) -> None:
    """Store each product's daily demand and the day's spikes (idempotent; reruns replace)."""
    settings = load_settings()

    tz = settings.clock.zone
    if day and (first or last):
        fail("give either --date or --from/--to, not both")
    if bool(first) != bool(last):
        fail("a range needs both --from and --to")
    lo = parse_day(first, "--from") or parse_day(day, "--date") or settings.clock.yesterday()
    hi = parse_day(last, "--to") or lo
    if hi < lo:
        fail(f"--to ({hi}) is before --from ({lo})")
    try:
        rule = rule_from(
            settings, lookback_days=lookback, min_history_days=min_history, min_units=min_units,
            min_orders=min_orders, margin=margin, weekday=weekday, alpha=alpha,
            store_margin=store_margin,
        )  # fmt: skip
    except ValueError as exc:
        fail(f"invalid rule: {exc}")
    with store(settings) as opened:
        if not force:
            grace = timedelta(minutes=settings.spike_grace_minutes)
            verdict = day_complete(settings, opened, hi, tz, grace)
            if not verdict.complete:
                fail(f"{verdict.reason}. Wait, or pass --force to run on what is there.")
        try:
            results = run(
                opened, lo, hi, tz, rule, report=console.print,
                lease_ttl_s=settings.spike_lease_ttl_s,
            )  # fmt: skip
        except (LeaseBusyError, LeaseLostError) as exc:
            fail(str(exc))
        sent = send_daily(opened, settings, [r.day for r in results])
    total = sum(r.spikes for r in results)
    console.print(f"[bold]{len(results)} day(s), {total} spike(s)[/] ({rule})")
    _print_alerts(sent)


@spikes.command("emerging")
def cmd_emerging(
    at: str = typer.Option(None, help="As of this time (ISO; default now)."),
) -> None:
    """Refresh today's emerging (provisional) spikes from the live rollups."""
    settings = load_settings()

    moment = settings.clock.now()
    if at:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            fail(f"--at must be an ISO time like 2026-11-28T14:05:00+00:00, not {at!r}")
        if moment.tzinfo is None:
            fail("--at needs a timezone offset (e.g. +00:00)")
    with store(settings) as opened:
        doc = refresh(opened, moment, settings.clock.zone, rule_from(settings))
        sent = send_emerging(opened, settings, doc["day"])
    console.print(f"{doc['day']} as of {doc['local_time']}: {doc['count']} emerging spike(s)")
    for s in doc["spikes"]:
        mark = "above" if s["above"] else "was above"
        console.print(
            f"  {s['product_id']:>7} {s['name'] or '':30} {s['units']:>6} units "
            f"(threshold {s['threshold']}) {mark}, crossed {s['crossed_at']:%H:%M}"
        )
    _print_alerts(sent)


def _print_alerts(sent: Outcome) -> None:
    """What the spike alerts did; a delivery that failed is a warning, not a failed command
    (the spikes are stored; the next run retries)."""
    for line in sent.lines():
        console.print(line)
    if warning := sent.warning():
        console.print(f"[bold yellow]warning:[/] {escape(warning)}")


@spikes.command("complete")
def cmd_complete(
    day: str = typer.Option(..., "--date", help="The business day."),
    grace: int = typer.Option(None, help="Minutes of grace (SHOPSTREAM_SPIKE_GRACE_MINUTES)."),
) -> None:
    """Exit 0 when DAY is complete (the daily DAG's sensor), else say why and exit 1."""
    settings = load_settings()

    tz = settings.clock.zone
    minutes = settings.spike_grace_minutes if grace is None else grace
    with store(settings) as opened:
        verdict = day_complete(settings, opened, parse_day(day, "--date"),  # type: ignore[arg-type]
                               tz, timedelta(minutes=minutes))  # fmt: skip
    console.print(verdict.reason)
    raise typer.Exit(0 if verdict.complete else 1)


@spikes.command("show")
def cmd_show(
    day: str = typer.Option(None, "--date", help="The business day (default: latest)."),
) -> None:
    """Print a day's detected spikes."""
    settings = load_settings()
    with store(settings) as opened:
        if day is None:
            days = opened.spikes.detected_days()
            if not days:
                fail("no day has been detected yet: run `shopstream spikes run`")
            day = max(days)
        found = opened.spikes.spikes_of(day)
    if found is None:
        fail(f"{day} has not been detected: run `shopstream spikes run --date {day}`")
    console.print(f"{day}: {len(found.spikes)} spike(s), rule {found.rule}")
    if found.store.get("event"):
        console.print(f"  store event: the whole store sold x{found.store['level']:.2f} its usual")
    for s in found.spikes:
        ratio = s["ratio"] or float("inf")
        noise = ""
        if s.get("p_value") is not None:
            expected = f"{s['orders_expected']:.1f} expected (p {s['p_value']:.2g})"
            noise = f", {s['orders']} orders vs {expected}"
        console.print(
            f"  {s['product_id']:>7} {s['name'] or '':30} {s['category'] or '':12} "
            f"{s['units']:>6} units, P95 {s['p95']:.1f}, x{ratio:.2f}{noise}"
        )


@spikes.command("label")
def cmd_label(
    label: str = typer.Argument(
        ..., help="expected (a promotion, a known event), wrong (a false alarm) or clear."
    ),
    day: str = typer.Option(..., "--date", help="The spike's business day."),
    product: int = typer.Option(..., "--product", help="The product id."),
    note: str = typer.Option("", help="Why (shown on the Demand spikes page)."),
    by: str = typer.Option(None, help="Who labels it (default: this user)."),
) -> None:
    """Label a detected spike. An expected day is left out of the product's later baselines
    (it takes effect from the next run); labels show on the Demand spikes page."""
    settings = load_settings()
    when = parse_day(day, "--date")
    assert when is not None
    if label not in (*LABELS, "clear"):
        fail(f"the label is one of {', '.join(LABELS)} or clear, not {label!r}")
    with store(settings) as opened:
        found = opened.spikes.spikes_of(when.isoformat())
        if found is None:
            fail(f"{when} has not been detected: run `shopstream spikes run --date {when}`")
        if label != "clear" and product not in {s["product_id"] for s in found.spikes}:
            detected = ", ".join(str(s["product_id"]) for s in found.spikes) or "none"
            fail(f"product {product} is not a spike of {when} (its spikes: {detected})")
        opened.spikes.set_label(
            when.isoformat(),
            product,
            None if label == "clear" else label,
            note=note,
            by=by or getpass.getuser(),
            at=settings.clock.now(),
        )
    done = "cleared" if label == "clear" else f"labelled {label}"
    console.print(f"{when}, product {product}: {done}")


def register(app: typer.Typer) -> None:
    app.add_typer(spikes, name="spikes")
