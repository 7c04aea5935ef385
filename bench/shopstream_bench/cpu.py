"""CPU time of processes (all their threads) over a measurement window, from /proc."""

from __future__ import annotations

import os
import time

__all__ = ["CpuMeter", "cpu_seconds"]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of `pid` so far (None: this process)."""
    if pid is None:
        return time.process_time()
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # The command name (field 2) may hold spaces; the fields after its ")" are fixed.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class CpuMeter:
    """CPU seconds each named process used between `start()` and `stop()`."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self._pids = pids
        self._began: dict[str, float] = {}
        self._used: dict[str, float] | None = None

    def _sample(self) -> dict[str, float]:
        found = {}
        for name, pid in self._pids.items():
            try:
                found[name] = cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue  # the process is gone; it is left out rather than guessed
        return found

    def start(self) -> None:
        self._began = self._sample()
        self._used = None

    def stop(self) -> dict[str, float]:
        """The CPU seconds used since `start()`; later calls return the same numbers."""
        if self._used is None:
            now = self._sample()
            self._used = {k: now[k] - v for k, v in self._began.items() if k in now}
        return self._used
