"""`shopstream stream` and `shopstream lake files | watermark`."""

from __future__ import annotations

import typer

from shopstream.cli.common import console, fail, load_settings
from shopstream.streaming.committed import committed_files, read_watermark

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
) -> None:
    """List the committed Parquet files of the orders table (what readers may load)."""
    settings = load_settings()

    for path in committed_files(f"{settings.lake}/orders", day=day, settings=settings):
        typer.echo(path)


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
