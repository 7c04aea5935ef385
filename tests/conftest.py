"""Keeps the developer's own SHOPSTREAM_* settings out of every test, and skips honest.

`--no-skips` (what `make test`, `make integration` and CI pass) fails any test that would
skip: there every capability the README promises is installed on purpose, so a skip would
hide a missing one. Every run ends by listing what was skipped and why.
"""

from __future__ import annotations

import os

for _key in list(os.environ):
    if _key.startswith("SHOPSTREAM_") and _key not in ("SHOPSTREAM_CACHE_DIR", "SHOPSTREAM_VENV"):
        del os.environ[_key]


import pytest  # noqa: E402

_SKIPS = pytest.StashKey[list[tuple[str, str]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-skips",
        action="store_true",
        help="fail every test that would be skipped (make test and CI install everything)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SKIPS] = []


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _reason(report)
    item.config.stash[_SKIPS].append((item.nodeid, reason))
    if item.config.getoption("--no-skips"):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under --no-skips, where nothing may be: {reason}. `make test` installs "
            "everything the suite needs (scripts/bootstrap.sh); run it again, or see its log."
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skips = terminalreporter.config.stash[_SKIPS]
    strict = terminalreporter.config.getoption("--no-skips")
    terminalreporter.section("skips")
    if not skips:
        terminalreporter.write_line("no test was skipped" + (" (--no-skips)" if strict else ""))
    for nodeid, reason in skips:
        verdict = "FAILED (--no-skips)" if strict else "skipped"
        terminalreporter.write_line(f"{verdict}: {nodeid}: {reason}")


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    """One local SparkSession for the whole run (~8 s to start), with the connector jars."""
    from shopstream.config import get_settings
    from shopstream.streaming.session import spark_session

    session = spark_session(get_settings(spark_master="local[2]"), app="shopstream-tests")
    yield session
    session.stop()
