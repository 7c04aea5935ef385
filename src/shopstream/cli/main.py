"""Entry point of the `shopstream` command."""

from __future__ import annotations

import typer

from shopstream.cli import (
    bench,
    demo,
    ingest,
    sim,
    spike_commands,
    stack,
    store_commands,
    stream,
    warehouse,
)

__all__ = ["app"]

app = typer.Typer(
    name="shopstream",
    help="An e-commerce order-event pipeline: API -> Kafka -> Spark -> lake + MongoDB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack.register(app)
ingest.register(app)
sim.register(app)
demo.register(app)
stream.register(app)
store_commands.register(app)
spike_commands.register(app)
warehouse.register(app)
bench.register(app)
