"""The ingestion API answers as its OpenAPI document says: schemathesis against the live API.

schemathesis reads the session stack's `/openapi.json`, generates requests from it (the
documented examples, boundary and schema-violating cases, random ones, sequences) and sends
them to that API over HTTP, with every check on and the repository's `schemathesis.toml`
(which says why two checks are relaxed; `tests/utils/api_contract.py` holds them to it).

It runs as the CLI a person would rerun, not through schemathesis's pytest plugin, whose
fixture-based loader (`schemathesis.pytest.from_fixture`, needed for a schema known only once
the stack is up) fails on pytest 9.2 (`Function` has no `_nodeid` any more).

Two runs: a derandomized one at a fixed seed, the same cases every time, and a bounded one
at a new seed, named in its failure, that `API_CONTRACT_SEED=<seed>` reruns. Orders the API
accepts are real: they land on the session's topic, as other API tests' orders do.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopstream.config import Settings
from tests.integration.conftest import API_KEY

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "schemathesis.toml"  # where a plain `schemathesis run` in the repo finds it
FIXED_SEED = 20260601
SEED_VARIABLE = "API_CONTRACT_SEED"  # not SHOPSTREAM_*: tests/conftest.py drops those
ACCEPTED = re.compile(r'^shopstream_orders_total\{outcome="accepted"\} (\S+)$', re.MULTILINE)


def contract_run(stack: Settings, report: Path, seed: int, *options: str) -> dict[str, Any]:
    """One schemathesis run against the stack's API; its JSON report."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color",
        "run", f"{stack.api_url}/openapi.json", "-H", f"X-API-Key: {API_KEY}",
        "--seed", str(seed), "--report", "json", "--report-json-path", str(report), *options,
    ]  # fmt: skip
    # From the repository's root: `hooks` names a module of `tests/`. Hypothesis keeps its
    # files beside the report, not in the repository.
    env = {**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(report.parent / "hypothesis")}
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    rerun = (
        f"seed {seed}: `{SEED_VARIABLE}={seed} pytest {Path(__file__).relative_to(REPO)}` "
        f"reruns the random run; the command was `{shlex.join(command[2:])}`"
    )
    output = proc.stdout[max(proc.stdout.find("FAILURES"), 0) :] + proc.stderr
    assert proc.returncode == 0, f"{rerun}\n{output}"
    result: dict[str, Any] = json.loads(report.read_text())
    return result


def accepted_orders(stack: Settings) -> float:
    metrics = httpx.get(f"{stack.api_url}/metrics", timeout=10).text
    match = ACCEPTED.search(metrics)
    return float(match.group(1)) if match else 0.0


def assert_clean(result: dict[str, Any], min_cases: int) -> None:
    assert result["complete"]
    assert result["stop_reason"] == "completed"
    assert result["operations"]["tested"] == result["operations"]["total"] == 4
    assert result["test_cases"]["with_failures"] == 0
    assert result["failures"] == result["errors"] == []
    # A warning such as `missing_auth` would mean the cases never got past the key check.
    assert not any(result["warnings"].values()), result["warnings"]
    assert result["test_cases"]["generated"] >= min_cases
    print(f"API contract, seed {result['seed']}: {result['test_cases']['generated']} cases")


def test_api_keeps_its_contract_at_a_fixed_seed(stack: Settings, tmp_path: Path) -> None:
    before = accepted_orders(stack)
    result = contract_run(
        stack, tmp_path / "fixed.json", FIXED_SEED, "--max-examples", "60",
        "--generation-deterministic",
    )  # fmt: skip
    assert_clean(result, min_cases=300)
    assert accepted_orders(stack) > before  # the documented examples reached Kafka


def test_api_keeps_its_contract_at_a_random_seed(stack: Settings, tmp_path: Path) -> None:
    seed = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().getrandbits(32))
    result = contract_run(stack, tmp_path / "random.json", seed, "--max-examples", "30")
    assert_clean(result, min_cases=150)
