"""Helpers shared by the CLI commands."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import NoReturn

import typer
from rich.console import Console

from shopstream.config import Settings, get_settings
from shopstream.logs import configure_logging
from shopstream.store.errors import StoreUnavailableError, translating
from shopstream.store.ferretdb import open_store
from shopstream.store.protocols import Store

__all__ = ["console", "exit_on_sigterm", "fail", "load_settings", "parse_day", "store"]

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


def exit_on_sigterm() -> None:
    """For batch commands: SIGTERM (Airflow stopping a task, `kill`) ends the command as an
    exception in its main thread, so its `finally` blocks run first (a lease released, a
    transaction rolled back) instead of the process vanishing mid-way. SIGKILL cannot be
    caught: for that, every batch write is safe to redo and the lease expires by itself."""

    def _stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _stop)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def parse_day(text: str | None, what: str) -> date | None:
    """A `YYYY-MM-DD` option's date (None for None), or a clear error naming the option."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{what} must be a date like 2026-11-28, not {text!r}")


@contextmanager
def store(settings: Settings) -> Iterator[Store]:
    """The stack's document store; a store error ends the command with what to check."""
    opened = open_store(settings, app="shopstream-cli", timeout_s=5)
    try:
        with translating():  # what the store's methods do, for anything else in the block
            yield opened
    except StoreUnavailableError as exc:
        fail(f"MongoDB at {settings.mongo_url} failed: {exc}. Is the stack up (`shopstream up`)?")
    finally:
        opened.close()
