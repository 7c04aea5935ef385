"""Airflow as part of the stack: its own virtualenv, a small production-like deployment.

- Installed by `shopstream install` into `<cache>/airflow/<version>-<digest>` from
  `airflow-constraints.txt` (Airflow pins FastAPI and SQLAlchemy versions of its own, so it
  never shares the project's virtualenv). DAG tasks run the project's CLI; the DAG files get
  their configuration from shopstream's settings as one JSON document (`dag_config`, in
  `SHOPSTREAM_DAG_CONFIG`), and read nothing else at parse time.
- Components as supervised services: the API server (UI and the task execution API), the
  scheduler (LocalExecutor) and the DAG processor. No triggerer: the DAGs' sensors
  reschedule instead of deferring.
- Metadata in the stack's PostgreSQL, database `airflow` (created when missing); parallelism
  `SHOPSTREAM_AIRFLOW_PARALLELISM` (4: the default 32 spawned ~40 processes and 5.4 GB here).
- Configuration by environment only (`airflow_env`), set by the launcher
  (`python -m shopstream.stack.airflow <airflow args>`, also `shopstream airflow ...`), so no
  secret lands in the supervisor's config; `AIRFLOW_HOME` is `<data>/airflow` (logs, the
  generated JWT secret, the admin's password file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from shopstream.config import Settings, get_settings, settings_env
from shopstream.stack import probes
from shopstream.stack.probes import pg_superuser_dsn
from shopstream.stack.secrets import generated_secret, write_private
from shopstream.tools.venvs import ensure_venv, venv_path
from shopstream.warehouse import dbt

__all__ = [
    "ADMIN_USER",
    "AIRFLOW_VERSION",
    "DAGS_FOLDER",
    "DAG_CONFIG_VARIABLE",
    "airflow_bin",
    "airflow_database_url",
    "airflow_env",
    "airflow_home",
    "airflow_url",
    "dag_config",
    "ensure_airflow",
    "exec_airflow",
    "first_day",
    "prepare_airflow",
    "run_airflow",
]

AIRFLOW_VERSION = "3.3.2"
AIRFLOW_REQUIREMENTS = (f"apache-airflow[postgres]=={AIRFLOW_VERSION}",)
AIRFLOW_DATABASE = "airflow"
ADMIN_USER = "admin"
# Every task that writes the warehouse takes a slot of this pool: one slot on DuckDB (one
# writer per file), the parallelism on Snowflake.
WAREHOUSE_POOL = "warehouse"
DAG_CONFIG_VARIABLE = "SHOPSTREAM_DAG_CONFIG"  # read by the files in dags/
DAGS_FOLDER = Path(str(resources.files("shopstream").joinpath("dags")))


def _constraints() -> Path:
    return Path(str(resources.files("shopstream.stack").joinpath("airflow-constraints.txt")))


def _venv(cache: Path) -> Path:
    return venv_path(cache, "airflow", AIRFLOW_VERSION, _constraints())


def airflow_bin(settings: Settings) -> Path:
    return _venv(settings.cache_path) / "bin" / "airflow"


def ensure_airflow(cache: Path) -> Path:
    """Airflow's virtualenv (created once per constraints file, ~1 min); its `airflow`."""
    venv = ensure_venv(
        _venv(cache), list(AIRFLOW_REQUIREMENTS), _constraints(), f"Airflow {AIRFLOW_VERSION}"
    )
    return venv / "bin" / "airflow"


def airflow_home(settings: Settings) -> Path:
    return settings.data_path.resolve() / "airflow"


def airflow_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.airflow_port}"


def airflow_database_url(settings: Settings) -> str:
    """The stack's PostgreSQL server, database `airflow`, for SQLAlchemy (psycopg2)."""
    parts = urlsplit(settings.postgres_url)
    return urlunsplit(("postgresql+psycopg2", parts.netloc, f"/{AIRFLOW_DATABASE}", "", ""))


def airflow_env(settings: Settings) -> dict[str, str]:
    """Airflow's whole configuration, as `AIRFLOW__*` variables, plus what DAG tasks need."""
    home = airflow_home(settings)
    url = airflow_url(settings)
    project_bin = Path(sys.executable).parent
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(settings.airflow_parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(settings.airflow_parallelism),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_database_url(settings),
        "AIRFLOW__API__HOST": settings.host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": generated_secret(home / "jwt_secret"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",  # offline: a warning per task otherwise
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # what the DAG files read (no other configuration at parse time)
        DAG_CONFIG_VARIABLE: json.dumps(dag_config(settings, project_bin / "shopstream")),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }


def dag_config(settings: Settings, shopstream_bin: Path) -> dict[str, Any]:
    """Everything the DAG files are configured with, from the settings (the DAGs read it
    from `SHOPSTREAM_DAG_CONFIG` and have no defaults of their own): the CLI their tasks run,
    the business timezone, each DAG's first day and catch-up, the warehouse and its pool."""
    return {
        "shopstream_bin": str(shopstream_bin),
        "business_timezone": settings.business_timezone,
        "spike_start_date": first_day(settings.spike_start_date, settings).isoformat(),
        "spike_catchup": settings.spike_catchup,
        "spike_emerging_every_min": settings.spike_emerging_every_min,
        "warehouse": settings.warehouse,
        "warehouse_start_date": first_day(
            settings.warehouse_start_date, settings, "UTC"
        ).isoformat(),
        "warehouse_catchup": settings.warehouse_catchup,
        "warehouse_pool": WAREHOUSE_POOL,
    }


def first_day(setting: date | None, settings: Settings, zone: str | None = None) -> date:
    """A daily DAG's first day: the setting, else 30 days before today by the configuration's
    clock, in `zone` (default the business timezone; the day a component starts; a fixed
    setting is better for a long-lived deployment)."""
    if setting is not None:
        return setting
    clock = settings.clock if zone is None else settings.clock.in_zone(zone)
    return clock.today() - timedelta(days=30)


def _write_password(settings: Settings) -> None:
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    password = settings.airflow_admin_password.get_secret_value()
    write_private(home / "passwords.json", json.dumps({ADMIN_USER: password}))


def _ensure_database(settings: Settings) -> None:
    """Database `airflow` on the stack's server: created by the managed cluster's superuser,
    or on an existing server by the configured role (which then needs CREATEDB)."""
    if settings.is_managed("postgres"):
        owner = urlsplit(settings.postgres_url).username or "shopstream"
        probes.bootstrap_postgres(pg_superuser_dsn(settings), owner, AIRFLOW_DATABASE)
        return
    with psycopg.connect(settings.postgres_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (AIRFLOW_DATABASE,)
        ).fetchone()
        if found:
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(AIRFLOW_DATABASE)))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise RuntimeError(
                f"Airflow keeps its metadata in database {AIRFLOW_DATABASE!r} on the PostgreSQL "
                f"server, and {owner_of(settings)} may not create it: create it (owned by that "
                "role), or grant the role CREATEDB, then retry"
            ) from exc


def owner_of(settings: Settings) -> str:
    return f"role {urlsplit(settings.postgres_url).username!r}"


def _full_env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, **settings_env(settings), **airflow_env(settings)}
    env["PATH"] = f"{airflow_bin(settings).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_airflow(
    settings: Settings, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Runs an Airflow CLI command with the stack's configuration; returns its result."""
    return subprocess.run(
        [str(airflow_bin(settings)), *args],
        env=_full_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def prepare_airflow(settings: Settings) -> None:
    """Before the first component starts: the database, the admin password, `db migrate`."""
    ensure_airflow(settings.cache_path)
    _ensure_database(settings)
    _write_password(settings)
    _prepare_dbt(settings)
    slots = "1" if settings.warehouse == "duckdb" else str(settings.airflow_parallelism)
    for args in (
        ("db", "migrate"),
        ("pools", "set", WAREHOUSE_POOL, slots, "Tasks writing the warehouse"),
    ):
        proc = run_airflow(settings, *args)
        if proc.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args[:2])} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
            )


def _prepare_dbt(settings: Settings) -> None:
    """What the warehouse DAG's dbt tasks need: dbt, its profile, the parsed project."""
    dbt.ensure_dbt(settings.cache_path)
    dbt.write_profiles(settings)
    dbt.parse_project(settings)


def healthy(settings: Settings, component: str) -> None:
    """Raises unless the API server answers and reports `component` healthy."""
    if component == "api-server":
        probes.http_ok(f"{airflow_url(settings)}/api/v2/monitor/health")
        return
    body = probes.http_json(f"{airflow_url(settings)}/api/v2/monitor/health")
    key = component.replace("-", "_")
    status = (body.get(key) or {}).get("status")
    if status != "healthy":
        raise RuntimeError(f"Airflow's {component} is {status or 'not reporting'}")


def exec_airflow(settings: Settings, args: list[str]) -> None:
    """Replaces this process with `airflow ARGS` under the stack's configuration."""
    binary = airflow_bin(settings)
    if not binary.exists():
        raise SystemExit(f"Airflow is not installed at {binary}: run `shopstream install`")
    os.execve(binary, [str(binary), *args], _full_env(settings))  # noqa: S606


def main() -> None:  # `python -m shopstream.stack.airflow scheduler` (the stack's services)
    exec_airflow(get_settings(), sys.argv[1:])


if __name__ == "__main__":
    main()
