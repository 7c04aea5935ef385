"""`shopstream dlq list|replay` and `shopstream rollups check|rebuild`."""

from __future__ import annotations

import os

import typer
from rich.table import Table

from shopstream.cli.common import console, fail, load_settings, store
from shopstream.stack.services import dashboard_command, dashboard_secrets
from shopstream.streaming.dlq import replay

__all__ = ["register"]

dlq = typer.Typer(help="Dead letters: records the streaming job could not process.")
rollups_app = typer.Typer(help="The serving rollups the dashboard reads.")


@dlq.command("list")
def cmd_dlq_list(
    reason: str = typer.Option(None, help="Only this reason, e.g. unknown_product."),
    include_replayed: bool = typer.Option(False, "--all", help="Also those already replayed."),
    limit: int = typer.Option(20, min=1, help="Show at most this many (newest first)."),
) -> None:
    """Show dead letters by reason, newest first."""
    settings = load_settings()
    with store(settings) as opened:
        counts = opened.dead_letters.summary()
        docs = opened.dead_letters.newest(reason, include_replayed, limit)
    if not counts:
        console.print("no dead letters")
        return
    totals = Table("reason", "waiting", "replayed", title="dead letters")
    for name in sorted({r for r, _ in counts}):
        totals.add_row(name, str(counts[(name, False)]), str(counts[(name, True)]))
    console.print(totals)
    table = Table("failed at (UTC)", "reason", "detail", "kafka", "payload")
    for doc in docs:
        payload = doc.payload
        table.add_row(
            f"{doc.failed_at:%Y-%m-%d %H:%M:%S}",
            doc.reason + (" (replayed)" if doc.replayed_at is not None else ""),
            doc.detail,
            doc.key,
            payload if len(payload) <= 60 else payload[:57] + "...",
        )
    console.print(table)


@dlq.command("replay")
def cmd_dlq_replay(
    reason: str = typer.Option(None, help="Only this reason."),
    dry_run: bool = typer.Option(False, help="Only say what would be replayed."),
) -> None:
    """Resubmit the dead letters whose cause is fixed (the customer or product now exists)."""
    settings = load_settings()

    with store(settings) as opened:
        try:
            report = replay(opened, settings, reason=reason, dry_run=dry_run)
        except RuntimeError as exc:
            fail(str(exc))
    verb = "would replay" if dry_run else "replayed"
    console.print(f"{verb} {len(report.replayed)} to {settings.orders_topic}")
    for doc_id, why in sorted(report.still_failing.items()):
        console.print(f"  still failing {doc_id}: {why}")
    if report.not_replayable:
        console.print(
            f"{report.not_replayable} malformed or schema-violating records cannot be replayed: "
            "fix their producer (the raw payloads are in the lake and `dlq list`)."
        )


@rollups_app.command("check")
def cmd_rollups_check() -> None:
    """Compare the rollups, distinct-customer sets and customer histories with a recomputation
    from the orders and dead letters (reads them all). Stop the streaming job first: a live
    job writes between the reads, and the newest buckets then differ."""
    settings = load_settings()
    with store(settings) as opened:
        diffs = opened.rollups.check(settings.clock.zone, settings.postgres_url)
    for line in diffs[:20]:
        console.print(line)
    if diffs:
        fail(f"{len(diffs)} rollup buckets differ from the orders; `shopstream rollups rebuild`")
    console.print("rollups, customer sets and histories match the orders and dead letters")


@rollups_app.command("rebuild")
def cmd_rollups_rebuild() -> None:
    """Recompute every rollup, customer set and history from the orders and dead letters.
    Stop the streaming job first."""
    settings = load_settings()
    with store(settings) as opened:
        written = opened.rollups.rebuild(settings.clock.zone, settings.postgres_url)
    console.print(
        f"rebuilt {written} rollup documents and history rows from {settings.mongo_database}.orders"
    )


def cmd_dashboard() -> None:
    """Serve the dashboard in the foreground (`shopstream up` also runs it as a service)."""

    settings = load_settings()
    problem = settings.dashboard_exposure_problem()
    if problem is not None:
        fail(problem)
    dashboard_secrets(settings)
    command = dashboard_command(settings)
    console.print(f"dashboard: {settings.dashboard_url} (Ctrl-C stops)")
    os.execv(command[0], command)  # noqa: S606 - our own fixed command line


def register(app: typer.Typer) -> None:
    app.command("dashboard")(cmd_dashboard)
    app.add_typer(dlq, name="dlq", no_args_is_help=True)
    app.add_typer(rollups_app, name="rollups", no_args_is_help=True)
