"""Test support shared by the suites: builders, store writers, polling."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(
    check: Callable[[], bool], what: str, timeout: float = 60, every: float = 0.2
) -> None:
    """Polls `check` until it is true; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
