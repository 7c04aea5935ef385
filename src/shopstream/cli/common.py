"""Helpers shared by the CLI commands."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from shopstream.config import Settings, get_settings
from shopstream.logs import configure_logging

__all__ = ["console", "fail", "load_settings"]

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def load_settings(service: bool = False) -> Settings:
    """Settings for a command. Commands talk to people through the console, so library logs
    below WARNING are shown only at DEBUG; a long-running service logs at the set level."""
    try:
        settings = get_settings()
    except ValueError as exc:
        fail(f"invalid settings: {exc}")
    level = settings.log_level.upper()
    configure_logging(level if service or level == "DEBUG" else "WARNING")
    return settings


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)
