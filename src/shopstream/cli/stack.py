"""`shopstream up | down | status | install | migrate`."""

from __future__ import annotations

import typer
from confluent_kafka import KafkaException
from rich.table import Table

from shopstream.cli.common import console, fail, load_settings
from shopstream.config import DEV_AIRFLOW_PASSWORD, Settings
from shopstream.db import migrate
from shopstream.messaging import ensure_topics
from shopstream.messaging.cluster import cluster_health
from shopstream.stack import StackError, airflow, down, status, up
from shopstream.stack.airflow import ADMIN_USER, airflow_url, exec_airflow
from shopstream.stack.manager import ServiceStatus
from shopstream.tools import install as installer
from shopstream.warehouse import dbt

__all__ = ["register"]

_STYLE = {
    "running": "green",
    "external": "cyan",
    "stopped": "yellow",
    "failed": "red",
    "unreachable": "red",
}


def _provision(settings: Settings) -> None:
    applied = migrate(settings.postgres_url)
    console.print(f"PostgreSQL schema up to date ({len(applied)} migration(s) applied now)")
    created = ensure_topics(settings)
    console.print(
        f"Kafka topics ready: {settings.orders_topic}, {settings.dlq_topic}"
        + (f" (created {', '.join(created)})" if created else "")
    )


def _table(rows: list[ServiceStatus]) -> Table:
    table = Table(title="shopstream stack")
    for col in ("service", "state", "address", "pid", "detail"):
        table.add_column(col, overflow="fold")
    for r in rows:
        style = _STYLE.get(r.state, "")
        table.add_row(r.title, f"[{style}]{r.state}[/]", r.address, str(r.pid or ""), r.detail)
    return table


def _print_kafka_cluster(settings: Settings) -> None:
    """One line on the Kafka cluster: its brokers and the partitions short of replicas."""
    try:
        health = cluster_health(settings.kafka_servers, timeout=3)
    except KafkaException as exc:
        console.print(f"Kafka cluster: [red]unreachable[/] ({exc})")
        return
    style = "red" if health.offline else "yellow" if health.under_replicated else "green"
    console.print(f"Kafka cluster: [{style}]{health.summary()}[/]")
    for part in health.under_replicated[:10]:
        console.print(f"  under-replicated: {part}")


def cmd_up() -> None:
    """Start the local stack (only what is not running yet) and wait until it is ready."""
    start_stack(load_settings())


def start_stack(settings: Settings) -> None:
    """`shopstream up` with these settings (the services are started with them)."""
    try:
        rows = up(settings, report=console.print, provision=_provision)
    except (StackError, installer.InstallError) as exc:
        fail(str(exc))
    console.print(_table(rows))
    _print_kafka_cluster(settings)
    if settings.dashboard_enabled:
        console.print(f"Dashboard: {settings.dashboard_url}")
    if settings.airflow_enabled:
        # The development placeholder is public anyway; a real password is never printed.
        password = (
            f"password {DEV_AIRFLOW_PASSWORD}; set SHOPSTREAM_AIRFLOW_ADMIN_PASSWORD to change it"
            if settings.airflow_password_is_placeholder
            else "the password in SHOPSTREAM_AIRFLOW_ADMIN_PASSWORD"
        )
        console.print(f"Airflow: {airflow_url(settings)} (user {ADMIN_USER}, {password})")
    console.print(f"API docs: {settings.api_url}/docs   logs: {settings.data_path / 'logs'}")


def cmd_down() -> None:
    """Stop what `up` started (data is kept)."""
    settings = load_settings()
    down(settings, report=console.print)


def cmd_status() -> None:
    """Show each service's state and address; exits 1 unless everything is up."""
    settings = load_settings()
    try:
        rows = status(settings)
    except installer.InstallError as exc:
        fail(str(exc))
    console.print(_table(rows))
    if any(r.name.startswith("kafka") and r.state in ("running", "external") for r in rows):
        _print_kafka_cluster(settings)
    if any(r.state not in ("running", "external") for r in rows):
        raise typer.Exit(1)


def cmd_install() -> None:
    """Fetch Kafka's jars and build FerretDB into the cache (done by `up` when needed)."""
    settings = load_settings()
    cache = settings.cache_path
    try:
        console.print(f"PostgreSQL server: {installer.postgres_bindir()}")
        if not installer.kafka_libs_dir(cache).joinpath(".complete").exists():
            console.print(f"fetching Kafka {installer.KAFKA_VERSION} from Maven Central ...")
        console.print(f"Kafka {installer.KAFKA_VERSION}: {installer.ensure_kafka(cache)}")
        if not installer.spark_jars_dir(cache).joinpath(".complete").exists():
            console.print(
                f"fetching Spark {installer.SPARK_VERSION} connectors from Maven Central ..."
            )
        jars = installer.ensure_spark_jars(cache)
        console.print(f"Spark connectors: {len(jars)} jars in {installer.spark_jars_dir(cache)}")
        # Here, not at the top: PySpark costs every other command ~0.1 s at start.
        from shopstream.streaming.session import uses_s3a

        if uses_s3a(settings):  # only then: the AWS SDK bundle alone is ~690 MB
            jars = installer.ensure_s3a_jars(cache, report=console.print)
            console.print(f"s3a (S3 lake): {len(jars)} jars in {installer.s3a_jars_dir(cache)}")
        if settings.airflow_enabled:
            if not airflow.airflow_bin(settings).exists():
                console.print(f"installing Airflow {airflow.AIRFLOW_VERSION} (a minute, once) ...")
            console.print(f"Airflow: {airflow.ensure_airflow(cache)}")

        if not dbt.dbt_bin(settings).exists():
            console.print(f"installing dbt {dbt.DBT_VERSION} (half a minute, once) ...")
        console.print(f"dbt: {dbt.ensure_dbt(cache)}")
        mongod = installer.find_mongod()
        if mongod is not None:
            console.print(f"MongoDB role: {mongod}")
            return
        if not installer.ferretdb_binary(cache).exists():
            console.print(
                f"building FerretDB {installer.FERRETDB_VERSION} from the Go module proxy "
                "(a minute or two, once) ..."
            )
        console.print(f"MongoDB role: FerretDB {installer.ensure_ferretdb(cache)}")
    except (installer.InstallError, ValueError) as exc:
        fail(str(exc))


def cmd_migrate() -> None:
    """Apply pending PostgreSQL migrations."""
    settings = load_settings()
    applied = migrate(settings.postgres_url)
    console.print(f"applied migrations: {applied or 'none pending'}")


def cmd_airflow(ctx: typer.Context) -> None:
    """Run the Airflow CLI with the stack's configuration, e.g. `shopstream airflow dags list`."""

    exec_airflow(load_settings(), list(ctx.args))


def register(app: typer.Typer) -> None:
    app.command(
        "airflow",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(cmd_airflow)
    app.command("up")(cmd_up)
    app.command("down")(cmd_down)
    app.command("status")(cmd_status)
    app.command("install")(cmd_install)
    app.command("migrate")(cmd_migrate)
