"""Failpoints kill their own process at the armed point, the N-th time it is reached, and
with a once-directory only the first process that reaches it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from shopstream.failpoints import ENV, ONCE_ENV

SCRIPT = """
import sys
from shopstream.failpoints import failpoint
for i in range(1, 4):
    print(i, flush=True)
    failpoint("here")
    failpoint("elsewhere")
"""


def run(env: dict[str, str]) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout.split()


def test_unarmed_points_do_nothing() -> None:
    assert run({}) == (0, ["1", "2", "3"])
    assert run({ENV: "other.point"}) == (0, ["1", "2", "3"])


def test_an_armed_point_kills_the_process_the_nth_time() -> None:
    assert run({ENV: "here"}) == (-signal.SIGKILL, ["1"])
    assert run({ENV: "nothing, here=2"}) == (-signal.SIGKILL, ["1", "2"])
    assert run({ENV: "here=4"}) == (0, ["1", "2", "3"])  # never reached a 4th time


def test_a_once_directory_lets_only_the_first_process_die(tmp_path: Path) -> None:
    env = {ENV: "here=2", ONCE_ENV: str(tmp_path)}
    assert run(env) == (-signal.SIGKILL, ["1", "2"])
    assert (tmp_path / "here").exists()
    assert run(env) == (0, ["1", "2", "3"])  # the retry runs through
