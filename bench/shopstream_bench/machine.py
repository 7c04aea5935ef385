"""A description of the machine and software a benchmark ran on, for its results file."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import confluent_kafka

from shopstream.tools.install import KAFKA_VERSION

__all__ = ["code_version", "describe_machine"]

_LIBRARIES = (
    "shopstream",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "pydantic-core",
    "orjson",
    "confluent-kafka",
    "psycopg",
    "limits",
    "prometheus-client",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def describe_machine() -> dict[str, Any]:
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "libraries": {name: _version(name) for name in _LIBRARIES},
        "librdkafka": confluent_kafka.libversion()[0],
        "kafka_broker": KAFKA_VERSION,
        "load_average_at_start": list(os.getloadavg()),
    }


def code_version() -> dict[str, Any]:
    """The commit a benchmark measured, and the files under `src` that differed from it."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "src_changes": git("status", "--porcelain", "--", "src").splitlines(),
    }
