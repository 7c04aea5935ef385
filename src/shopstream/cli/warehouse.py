"""`shopstream warehouse ...`: the batch ELT (docs/warehouse.md).

`load` runs every step for a day and `catch-up` for every complete day not built yet; the
other commands are the steps one by one, as the `lake_to_warehouse` DAG runs them (`plan`,
`stage` per day, `build` for all of a run's days).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TypeVar

import typer

from shopstream.cli.common import console, exit_on_sigterm, fail, load_settings, parse_day
from shopstream.config import Settings
from shopstream.stack.airflow import first_day
from shopstream.streaming.compaction import CompactionError
from shopstream.warehouse import open_warehouse
from shopstream.warehouse.base import WarehouseError
from shopstream.warehouse.lakeday import LakeError
from shopstream.warehouse.load import (
    build,
    is_complete,
    load_day,
    load_days,
    load_raw,
    mark_built,
    plan,
    reconcile,
    snapshot_dimensions,
    stage,
    transform,
)
from shopstream.warehouse.serving import publish

__all__ = ["register"]

warehouse = typer.Typer(
    help="Load the lake into the warehouse (DuckDB or Snowflake) and build the dbt marts.",
    no_args_is_help=True,
)
T = TypeVar("T")


@warehouse.callback()
def _batch() -> None:
    exit_on_sigterm()  # a stopped task releases what it holds


_DAY = typer.Option(None, "--date", help="The lake day, UTC (default: yesterday).")


def _the_day(text: str | None, settings: Settings) -> date:
    """The given lake day, else yesterday by the configuration's clock (lake days are UTC)."""
    return parse_day(text, "--date") or settings.clock.in_zone("UTC").yesterday()


@contextmanager
def _errors() -> Iterator[None]:
    """Turns the warehouse's and the lake's errors into one clear line and exit code 1."""

    try:
        yield
    except (WarehouseError, LakeError, CompactionError) as exc:
        fail(str(exc))


def _step(settings: Settings, action: Callable[..., T], day: date | None) -> T:

    with _errors(), open_warehouse(settings) as wh:
        return action(settings, wh, day) if day is not None else action(settings, wh)


@warehouse.command("complete")
def cmd_complete(day: str = _DAY) -> None:
    """Exit 0 when DAY is complete in the lake (the DAG's sensor), else say why and exit 1."""

    settings = load_settings()
    done, reason = is_complete(settings, _the_day(day, settings))
    console.print(reason)
    raise typer.Exit(0 if done else 1)


@warehouse.command("load")
def cmd_load(
    day: str = _DAY,
    force: bool = typer.Option(False, help="Load even if the day is not complete yet."),
) -> None:
    """Every step for DAY: raw load, dimensions, reconcile, dbt build, publish."""
    settings = load_settings()

    the_day = _the_day(day, settings)
    done, reason = is_complete(settings, the_day)
    if not done and not force:
        fail(f"{reason}. Wait, or pass --force to load what is there.")
    with _errors():
        record = load_day(settings, the_day, report=console.print)
    console.print(f"[bold]{the_day}: {record.status}[/] ({record.message})")


@warehouse.command("raw")
def cmd_raw(day: str = _DAY) -> None:
    """Step 1: DAY's committed lake files into raw.orders, replacing DAY's rows."""

    settings = load_settings()
    record = _step(settings, load_raw, _the_day(day, settings))
    console.print(f"{record.day}: {record.message} ({record.load_seconds} s)")


@warehouse.command("dimensions")
def cmd_dimensions(
    day: str = typer.Option(None, "--date", help="Record counts on DAY's load."),
) -> None:
    """Step 2: snapshot customers and products from PostgreSQL into raw.*."""

    customers, products = _step(load_settings(), snapshot_dimensions, parse_day(day, "--date"))
    console.print(f"raw.customers {customers:,} rows, raw.products {products:,} rows")


@warehouse.command("reconcile")
def cmd_reconcile(day: str = _DAY) -> None:
    """Step 3: DAY's raw rows and distinct orders must equal the lake's (else exit 1)."""

    settings = load_settings()
    console.print(_step(settings, reconcile, _the_day(day, settings)).describe())


@warehouse.command("transform")
def cmd_transform(day: str = _DAY) -> None:
    """Step 4: `dbt build` for DAY (models, then every data test), then publish."""
    settings = load_settings()

    with _errors():
        result = transform(settings, [_the_day(day, settings)])
        publish(settings)
    console.print(result.table(), highlight=False)
    console.print(f"dbt build passed in {result.seconds:.1f} s")


def _days(text: str) -> list[date]:
    days = [parse_day(part.strip(), "--days") for part in text.split(",") if part.strip()]
    if not days:
        fail("--days needs at least one day YYYY-MM-DD (comma-separated)")
    return [d for d in days if d is not None]


@warehouse.command("plan")
def cmd_plan(
    day: str = _DAY,
    first: str = typer.Option(None, "--first", help="The first day to consider (default: DAY)."),
    reload: bool = typer.Option(False, help="Load DAY even if it is built already."),
    limit: int = typer.Option(92, min=1, help="At most this many days."),
    wait: bool = typer.Option(False, help="Exit 3, saying why, while DAY is not complete."),
) -> None:
    """The days a run for DAY loads: DAY unless built, and every complete lake day since
    FIRST not built yet (oldest first). The last line is them as a JSON list."""
    settings = load_settings()
    the_day = _the_day(day, settings)
    if wait and not (complete := is_complete(settings, the_day))[0]:
        console.print(complete[1], highlight=False)
        raise typer.Exit(3)
    since = parse_day(first, "--first") or the_day
    with _errors(), open_warehouse(settings) as wh:
        found = plan(settings, wh, the_day, since, reload=reload, limit=limit)
    console.print(found.reason, highlight=False)
    sys.stdout.write(json.dumps([d.isoformat() for d in found.days]) + "\n")


@warehouse.command("stage")
def cmd_stage(day: str = _DAY) -> None:
    """For DAY: its compaction (once complete), its raw load, then its reconciliation (exit 1
    on a mismatch)."""
    settings = load_settings()
    the_day = _the_day(day, settings)
    with _errors(), open_warehouse(settings) as wh:
        console.print(stage(settings, wh, the_day, report=_say).describe(), highlight=False)


@warehouse.command("build")
def cmd_build(
    days: str = typer.Option(..., "--days", help="The loaded days, comma-separated."),
    retry: bool = typer.Option(
        False, help="Run only what the same days' last build did not finish (`dbt retry`)."
    ),
) -> None:
    """Dimensions, one `dbt build` over DAYS (each loaded and reconciled), publish. The last
    line is each model's and the tests' results as JSON (the DAG's XCom)."""
    settings = load_settings()
    with _errors():
        result = build(settings, _days(days), retry=retry, report=_say)
    sys.stdout.write(json.dumps(result.summary()) + "\n")


def _say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


@warehouse.command("catch-up")
def cmd_catch_up(
    day: str = typer.Option(None, "--date", help="Up to this day (default: yesterday, UTC)."),
    first: str = typer.Option(None, "--first", help="From this day (default: the settings')."),
) -> None:
    """Every complete lake day not built yet, in one pass (at most 92; run it again for the
    rest): each loaded and reconciled, then one dbt build for all of them (a DAG run's work)."""
    settings = load_settings()
    the_day = _the_day(day, settings)
    since = parse_day(first, "--first") or first_day(settings.warehouse_start_date, settings, "UTC")
    with _errors():
        with open_warehouse(settings) as wh:
            found = plan(settings, wh, the_day, since)
        # the plan's other days are complete; only its own may not be
        pending = [d for d in found.days if d != the_day or is_complete(settings, d)[0]]
        if not pending:
            console.print(found.reason if not found.days else "nothing complete to load")
            return
        console.print(f"{len(pending)} day(s) to load: {pending[0]} .. {pending[-1]}")
        records = load_days(settings, pending, report=_say)
    console.print(f"[bold]{len(records)} day(s) built[/]")


@warehouse.command("publish")
def cmd_publish(
    day: str = typer.Option(None, "--date", help="Mark DAY's reconciled load built first."),
) -> None:
    """Refresh the dashboard's serving copy of the marts (DuckDB)."""
    settings = load_settings()

    if (the_day := parse_day(day, "--date")) is not None:
        record = _step(settings, mark_built, the_day)
        console.print(f"{the_day}: built ({record.build_seconds} s since reconciliation)")
    with _errors():
        done = publish(settings)
    console.print("published" if done else "nothing to publish: the warehouse is Snowflake")


@warehouse.command("loads")
def cmd_loads(limit: int = typer.Option(15, help="How many of the latest loads.")) -> None:
    """The latest loads: day, status, lake and raw counts, durations."""

    with _errors(), open_warehouse(load_settings()) as wh:
        wh.ensure_tables()
        records = wh.recent_loads(limit)
    if not records:
        fail("nothing has been loaded yet: run `shopstream warehouse load --date D`")
    for r in records:
        console.print(
            f"{r.day}  {r.status:10}  lake {r.lake_rows:>9,} rows  raw {r.raw_rows or 0:>9,}  "
            f"load {r.load_seconds or 0:6.1f} s  build {r.build_seconds or 0:6.1f} s  "
            f"{r.started_at:%Y-%m-%d %H:%M}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(warehouse, name="warehouse")
