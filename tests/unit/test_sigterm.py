"""A batch command's SIGTERM runs its `finally` blocks before the process ends
(`cli.common.exit_on_sigterm`): a stopped Airflow task releases its lease and rolls back."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = """
import sys, time
from pathlib import Path
from shopstream.cli.common import exit_on_sigterm

exit_on_sigterm()
marker = Path(sys.argv[1])
try:
    marker.write_text("holding")
    time.sleep(60)
finally:
    marker.write_text("released")
"""


def test_sigterm_runs_the_finally_blocks_and_exits_143(tmp_path: Path) -> None:
    marker = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(marker)])
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text() == "holding"):
        assert time.monotonic() < deadline, "the script never started holding"
        assert proc.poll() is None, "the script ended early"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert marker.read_text() == "released"
