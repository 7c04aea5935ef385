"""`--no-skips` (make test, CI) turns a skip into a failure; every run lists its skips."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT_CONFTEST = Path(__file__).parents[1] / "conftest.py"


def run_pytest(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(where), "-p", "no:cacheprovider", "-q", *args],
        capture_output=True, text=True, cwd=where, timeout=120, check=False,
    )  # fmt: skip


def test_a_skip_fails_under_no_skips_and_every_run_names_its_skips(tmp_path: Path) -> None:
    shutil.copy(ROOT_CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n"
        "def test_passes():\n    assert True\n\n"
        "@pytest.mark.skipif(True, reason='needs a browser')\n"
        "def test_browser():\n    pass\n"
    )
    relaxed = run_pytest(tmp_path)
    assert relaxed.returncode == 0, relaxed.stdout
    assert "skipped: test_x.py::test_browser: needs a browser" in relaxed.stdout
    strict = run_pytest(tmp_path, "--no-skips")
    assert strict.returncode == 1, strict.stdout
    assert "FAILED (--no-skips): test_x.py::test_browser: needs a browser" in strict.stdout
    assert "1 passed" in strict.stdout

    (tmp_path / "test_x.py").write_text("def test_passes():\n    assert True\n")
    clean = run_pytest(tmp_path, "--no-skips")
    assert clean.returncode == 0, clean.stdout
    assert "no test was skipped (--no-skips)" in clean.stdout
