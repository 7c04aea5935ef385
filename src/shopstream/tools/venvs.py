"""Tool virtualenvs beside the project's: Airflow's and dbt's (each pins libraries of its own).

A virtualenv lives at `<cache>/<tool>/<version>-<digest of its constraints file>`, so a changed
constraints file installs a fresh one and a machine never runs a half-installed one (the
`.complete` marker is written last).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from shopstream.tools.install import InstallError

__all__ = ["ensure_venv", "venv_path"]


def venv_path(cache: Path, tool: str, version: str, constraints: Path) -> Path:
    digest = hashlib.sha256(constraints.read_bytes()).hexdigest()[:10]
    return cache / tool / f"{version}-{digest}"


def ensure_venv(venv: Path, requirements: list[str], constraints: Path, what: str) -> Path:
    """Creates `venv` with `requirements` under `constraints` unless it is complete; its path."""
    done = venv / ".complete"
    if done.exists() and (venv / "bin" / "python").exists():
        return venv

    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    python = shutil.which("python3.11") or sys.executable
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    steps = [
        [python, "-m", "venv", str(venv)],
        [*pip, "--upgrade", "pip"],
        [*pip, "-c", str(constraints), *requirements],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise InstallError(
                f"installing {what} failed ({' '.join(cmd[:4])} ...):\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
    done.write_text(what + "\n")
    return venv
