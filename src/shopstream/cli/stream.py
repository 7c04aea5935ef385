"""`shopstream stream` and `shopstream lake files`."""

from __future__ import annotations

import json
import os
import signal
import threading

import typer

from shopstream.cli.common import console, fail, load_settings
from shopstream.config import Settings

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
        from shopstream.streaming.session import job_jars

        typer.echo(",".join(str(j) for j in job_jars(settings)))
        return
    run_stream(settings, once)


def run_stream(settings: Settings, once: bool = False) -> None:
    """Starts both queries, writes the ready file, and waits (also the spark-submit entry)."""
    from shopstream.stack.services import stream_ready_file
    from shopstream.streaming.job import start_job
    from shopstream.streaming.session import spark_session

    spark = spark_session(settings)
    queries = start_job(spark, settings, available_now=once)
    ready = stream_ready_file(settings)
    ready.parent.mkdir(parents=True, exist_ok=True)
    ready.write_text(json.dumps({"pid": os.getpid(), "queries": [q.name for q in queries]}))
    console.print(
        f"streaming {settings.orders_topic}: lake {settings.lake}/orders, MongoDB "
        f"{settings.mongo_database}.orders (checkpoints in {settings.checkpoints})"
    )
    # SIGTERM (`shopstream down`, supervisord) and Ctrl-C stop the queries from this thread,
    # between py4j calls; the batch they interrupt is replayed at the next start.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    try:
        while not stopping.is_set() and any(q.isActive for q in queries):
            for query in queries:
                query.awaitTermination(1)  # raises if the query failed
    except KeyboardInterrupt:
        stopping.set()
    if stopping.is_set():
        for query in queries:
            query.stop()
        console.print("streaming job stopped")


lake = typer.Typer(help="Inspect the data lake.", no_args_is_help=True)


@lake.command("files")
def cmd_lake_files(
    day: str = typer.Option(None, help="Only this event date (YYYY-MM-DD)."),
) -> None:
    """List the committed Parquet files of the orders table (what readers may load)."""
    settings = load_settings()
    from shopstream.streaming.committed import committed_files

    for path in committed_files(f"{settings.lake}/orders", day=day, settings=settings):
        typer.echo(path)


@lake.command("watermark")
def cmd_lake_watermark() -> None:
    """Show the landing query's event-time watermark and the last complete day."""
    settings = load_settings()
    from shopstream.streaming.committed import read_watermark

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
