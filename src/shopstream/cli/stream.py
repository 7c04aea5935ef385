"""`shopstream stream` and `shopstream lake files | watermark | compact | vacuum`."""

from __future__ import annotations

from datetime import date

import typer

from shopstream.cli.common import console, fail, load_settings, parse_day
from shopstream.streaming.committed import (
    committed_files,
    lake_files,
    partition_key,
    read_watermark,
    unreplaced_files,
)
from shopstream.streaming.compaction import CompactionError, at_risk, compact_day, vacuum
from shopstream.warehouse.load import is_complete

__all__ = ["register"]


def cmd_stream(
    once: bool = typer.Option(False, help="Process what is in Kafka now, then stop."),
    print_jars: bool = typer.Option(
        False, help="Print the connector jars for `spark-submit --jars` (fetching them) and exit."
    ),
) -> None:
    """Run the streaming job: land every order in the lake and enrich it into MongoDB."""
    settings = load_settings(service=not print_jars)
    if print_jars:
        # Here, not at the top: PySpark costs every other command ~0.1 s at start.
        from shopstream.streaming.session import job_jars

        typer.echo(",".join(str(j) for j in job_jars(settings)))
        return
    # Here, not at the top: PySpark costs every other command ~0.1 s at start.
    from shopstream.streaming.run import run_job

    console.print(f"streaming {settings.orders_topic} (Ctrl-C stops) ...")
    run_job(settings, once)
    console.print("streaming job stopped" if not once else "streaming job done")


lake = typer.Typer(help="Inspect the data lake.", no_args_is_help=True)


@lake.command("files")
def cmd_lake_files(
    day: str = typer.Option(None, help="Only this event date (YYYY-MM-DD)."),
    raw: bool = typer.Option(
        False, help="The file sink's own log (what Spark reads), ignoring compaction."
    ),
) -> None:
    """List the Parquet files of the orders table readers load: per day, its compacted files
    and what was committed since (`--raw`: the committed files as Spark's log names them)."""
    settings = load_settings()

    files = committed_files if raw else lake_files
    for path in files(f"{settings.lake}/orders", day, settings):
        typer.echo(path)


@lake.command("compact")
def cmd_lake_compact(
    day: str = typer.Option(None, "--date", help="The lake day (UTC), YYYY-MM-DD."),
    every: bool = typer.Option(
        False, "--all", help="Every complete day (and `unparsed`) with files no compaction holds."
    ),
    force: bool = typer.Option(False, help="Compact even if the day is not complete yet."),
) -> None:
    """Rewrite a complete day's files as a few (at most ~128 MB each), published atomically;
    late files are folded in by the next compaction (docs/streaming.md, "Compaction").
    `--all` does it for every complete day that needs it, and for any partition with files
    old enough for the log's retention to drop: what a lake from before the retention needs
    once (the streaming job says so when it starts)."""
    settings = load_settings()
    if every == (day is not None):
        fail("give --date D or --all")
    if every:
        found = [partition_key(p) for p in unreplaced_files(f"{settings.lake}/orders", settings)]
        risky = set(at_risk(settings))  # compacted complete or not: the log would drop them
        todo: list[date | str] = [
            p
            for p in found
            if p is not None
            and (isinstance(p, str) or p in risky or force or is_complete(settings, p)[0])
        ]
        if not todo:
            console.print("nothing to compact: every complete day is compacted", highlight=False)
    else:
        the_day = parse_day(day, "--date")
        if the_day is None:
            fail("--date is required")
        done, reason = is_complete(settings, the_day)
        if not done and not force:
            fail(f"{reason}. Wait, or pass --force.")
        todo = [the_day]
    for part in todo:
        try:
            console.print(compact_day(settings, part).message, highlight=False)
        except CompactionError as exc:
            fail(f"{exc}; nothing was published, readers still see the day as before")


@lake.command("vacuum")
def cmd_lake_vacuum() -> None:
    """Delete compacted versions no reader can still be reading: those a compaction killed
    before its publish left (6 hours after they were started) and superseded ones (10 minutes
    after); and the raw files a compacted day replaces once the log no longer names them
    (SHOPSTREAM_LAKE_LOG_RETENTION_HOURS after its compaction). Each compaction does the
    first for its own day, and each warehouse build all of it."""
    settings = load_settings()
    result = vacuum(settings)
    for path in result.versions:
        console.print(f"deleted {path}", highlight=False)
    if result.raw_days:
        console.print(f"raw files deleted for {', '.join(result.raw_days)}", highlight=False)
    console.print(result.describe(), highlight=False)


@lake.command("watermark")
def cmd_lake_watermark() -> None:
    """Show the landing query's event-time watermark and the last complete day."""
    settings = load_settings()

    doc = read_watermark(f"{settings.lake}/orders", settings)
    if doc is None:
        fail("no watermark published yet: is the streaming job running and has it seen orders?")
    console.print(
        f"watermark {doc['watermark']} (batch {doc['batch_id']}, published "
        f"{doc['published_at']}): days up to {doc['complete_through']} are complete"
    )


def register(app: typer.Typer) -> None:
    app.command("stream")(cmd_stream)
    app.add_typer(lake, name="lake")
