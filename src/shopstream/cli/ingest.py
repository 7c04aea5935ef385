"""`shopstream api | schema`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import uvicorn

from shopstream.cli.common import console, load_settings
from shopstream.domain import SCHEMA_VERSION, order_event_json_schema

__all__ = ["register"]

SCHEMA_FILE = Path("schemas") / f"order_event.v{SCHEMA_VERSION}.json"


def cmd_api() -> None:
    """Run the ingestion API in the foreground (`up` runs it under supervision)."""
    settings = load_settings(service=True)
    # Here, not at the top: FastAPI and the app cost every other command 0.3 s at start.
    from shopstream.ingestion import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


def cmd_schema(
    write: bool = typer.Option(False, help=f"Write it to {SCHEMA_FILE} instead of printing."),
) -> None:
    """Print the JSON Schema of the order event (the Kafka record value)."""
    text = json.dumps(order_event_json_schema(), indent=2, sort_keys=True) + "\n"
    if write:
        SCHEMA_FILE.write_text(text)
        console.print(f"wrote {SCHEMA_FILE}")
    else:
        typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.command("api")(cmd_api)
    app.command("schema")(cmd_schema)
