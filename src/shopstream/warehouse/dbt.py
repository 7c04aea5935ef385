"""dbt, run from its own virtualenv over the package's project (`warehouse/dbt`).

dbt-core 1.11 with the DuckDB and Snowflake adapters, installed by `shopstream install` into
`<cache>/dbt/<version>-<digest>` from `dbt-constraints.txt` (dbt pins protobuf, click and
others of its own; the project never imports it). The profile is generated from the settings
into `work_dir` (`<data>/warehouse/shopstream.dbt/` beside the DuckDB file, or
`<data>/warehouse/dbt-snowflake/`); the Snowflake password stays an `env_var`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

from shopstream.config import Settings
from shopstream.tools.venvs import ensure_venv, venv_path
from shopstream.warehouse.base import WarehouseError

__all__ = [
    "DAY_VARIABLE",
    "DBT_VERSION",
    "PROJECT_DIR",
    "NodeResult",
    "days_text",
    "dbt_bin",
    "dbt_env",
    "describe_days",
    "ensure_dbt",
    "parse_project",
    "read_run_results",
    "run_dbt",
    "run_results_path",
    "work_dir",
    "write_profiles",
]

log = logging.getLogger(__name__)

DBT_VERSION = "1.11.16"
REQUIREMENTS = (f"dbt-core=={DBT_VERSION}", "dbt-duckdb==1.11.1", "dbt-snowflake==1.12.4")
# The lake days a dbt run builds, comma-separated (macros/day.sql); empty: every day.
DAY_VARIABLE = "SHOPSTREAM_WAREHOUSE_DAYS"
PROJECT_DIR = Path(str(resources.files("shopstream.warehouse").joinpath("dbt")))


def _constraints() -> Path:
    return Path(str(resources.files("shopstream.warehouse").joinpath("dbt-constraints.txt")))


def _venv(cache: Path) -> Path:
    return venv_path(cache, "dbt", DBT_VERSION, _constraints())


def dbt_bin(settings: Settings) -> Path:
    return _venv(settings.cache_path) / "bin" / "dbt"


def ensure_dbt(cache: Path) -> Path:
    """dbt's virtualenv (created once per constraints file, ~20 s); its `dbt`."""
    venv = ensure_venv(_venv(cache), list(REQUIREMENTS), _constraints(), f"dbt {DBT_VERSION}")
    return venv / "bin" / "dbt"


def work_dir(settings: Settings) -> Path:
    """dbt's profile, manifest, target and logs (never inside the installed package): beside
    the DuckDB file (one per database), or in the data directory for Snowflake."""
    if settings.warehouse == "duckdb":
        return settings.duckdb_path.parent / f"{settings.duckdb_path.stem}.dbt"
    return settings.data_path / "warehouse" / "dbt-snowflake"


def _snowflake_output(settings: Settings) -> dict[str, object]:
    out: dict[str, object] = {
        "type": "snowflake",
        "account": settings.snowflake_account or "",
        "user": settings.snowflake_user or "",
        "password": "{{ env_var('SHOPSTREAM_SNOWFLAKE_PASSWORD') }}",
        "database": settings.snowflake_database,
        "schema": "MARTS",
        "threads": 4,
        "client_session_keep_alive": False,
    }
    for key, value in (
        ("warehouse", settings.snowflake_warehouse),
        ("role", settings.snowflake_role),
        ("host", settings.snowflake_host),
        ("port", settings.snowflake_port),
    ):
        if value is not None:
            out[key] = value
    if settings.snowflake_protocol != "https":
        out["protocol"] = settings.snowflake_protocol
    return out


def write_profiles(settings: Settings) -> Path:
    """profiles.yml for the configured warehouse (JSON is YAML); its directory."""
    if settings.warehouse == "duckdb":
        output: dict[str, object] = {
            "type": "duckdb",
            "path": str(settings.duckdb_path),
            # 4 threads measured no faster on 2 cores under the demo (dbt's nodes 4.4 s vs 3.1)
            "threads": 1,
            "schema": "marts",
            # as the raw load's connection: faster, leaner writes; no model relies on it
            "settings": {"preserve_insertion_order": False},
        }
    else:
        output = _snowflake_output(settings)
    profile = {
        "shopstream": {"target": settings.warehouse, "outputs": {settings.warehouse: output}}
    }
    directory = work_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "profiles.yml"
    text = json.dumps(profile, indent=2) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return directory


def dbt_env(settings: Settings) -> dict[str, str]:
    """What a dbt process needs besides its arguments (also given to Airflow's tasks)."""
    directory = work_dir(settings)
    env = {
        "DBT_PROFILES_DIR": str(directory),
        "DBT_TARGET_PATH": str(directory / "target"),
        "DBT_LOG_PATH": str(directory / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DBT_PARTIAL_PARSE": "True",
    }
    if settings.snowflake_password is not None:
        env["SHOPSTREAM_SNOWFLAKE_PASSWORD"] = settings.snowflake_password.get_secret_value()
    return env


def parse_project(settings: Settings) -> None:
    """`dbt parse` into the target directory (a few seconds; no warehouse connection), so the
    first build after `up` starts from a warm partial parse."""
    run_dbt(settings, "parse")


def days_text(days: Sequence[date] | None) -> str:
    """The days as SHOPSTREAM_WAREHOUSE_DAYS says them (sorted, comma-separated)."""
    return ",".join(sorted({d.isoformat() for d in days or ()}))


def describe_days(days: Sequence[date] | None) -> str:
    if not days:
        return "all days"
    ordered = sorted(set(days))
    if len(ordered) <= 3:
        return ", ".join(d.isoformat() for d in ordered)
    return f"{len(ordered)} days, {ordered[0]} .. {ordered[-1]}"


def run_dbt(
    settings: Settings,
    command: str,
    days: Sequence[date] | None = None,
    select: str | None = None,
    extra: tuple[str, ...] = (),
) -> str:
    """`dbt COMMAND` over the project for `days` (all days when None or empty); its output.

    Raises WarehouseError with dbt's failures when it fails (a failed data test included).
    """
    dbt = ensure_dbt(settings.cache_path)
    write_profiles(settings)
    args = [str(dbt), command, "--project-dir", str(PROJECT_DIR), "--no-use-colors"]
    if select:
        args += ["--select", select]
    args += extra
    # the days are read from the environment, not --vars (which force a full re-parse)
    env = {**os.environ, **dbt_env(settings), DAY_VARIABLE: days_text(days)}
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        failures = [
            line
            for line in out.splitlines()
            if "FAIL" in line or "ERROR" in line or "Error" in line
        ]
        detail = "\n".join(failures[-15:]) or out[-3000:]
        raise WarehouseError(f"dbt {command} failed for {describe_days(days)}:\n{detail}")
    return out


@dataclass(frozen=True)
class NodeResult:
    """One node of a dbt invocation, from its run_results.json."""

    unique_id: str
    status: str  # success | error | fail | pass | warn | skipped
    seconds: float
    message: str

    @property
    def kind(self) -> str:  # model | test | seed | ...
        return self.unique_id.split(".", 1)[0]

    @property
    def name(self) -> str:
        return (
            self.unique_id.split(".")[-1] if self.kind != "test" else self.unique_id.split(".")[2]
        )

    @property
    def ok(self) -> bool:
        return self.status in ("success", "pass", "warn")


def run_results_path(settings: Settings) -> Path:
    return work_dir(settings) / "target" / "run_results.json"


def read_run_results(settings: Settings) -> tuple[str | None, list[NodeResult]]:
    """The last invocation's id and node results (none when there is no run_results.json)."""
    path = run_results_path(settings)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, []
    results = [
        NodeResult(
            unique_id=r["unique_id"],
            status=str(r["status"]),
            seconds=round(float(r.get("execution_time") or 0.0), 3),
            message=str(r.get("message") or "")[:500],
        )
        for r in doc.get("results", [])
    ]
    return doc.get("metadata", {}).get("invocation_id"), results
