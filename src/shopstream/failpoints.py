"""Failpoints: named places where a test or `shopstream chaos` makes the process die, to prove
that a crash exactly there loses and doubles nothing (FoundationDB's and TiKV's practice).

`SHOPSTREAM_FAILPOINTS="warehouse.replace_day.before_commit"` (comma-separated names; `name=N`
for the N-th time the point is reached) makes `failpoint(name)` SIGKILL its own process there: no
`finally`, no `atexit`, no rollback by the client, like `kill -9` or the OOM killer. With
`SHOPSTREAM_FAILPOINTS_ONCE=<dir>` a point fires once across processes: the first process to
reach it creates `<dir>/<name>` and dies, the others (a retry) run through; that is how
`shopstream chaos` arms the stack's Airflow tasks. Unset (as in production) a failpoint is one
dict lookup. Not a `Settings` field: it is a test's instrument, read from the process
environment only, and a production process never has it.

The points (each a `failpoint(...)` call in the code):
- `warehouse.replace_day.before_commit`: a day's raw load has deleted and inserted its rows,
  not committed them (a kill leaves the day's previous rows);
- `lake.compact.before_publish`: a compaction has written and checked a day's new files, not
  published its manifest (a kill leaves files no reader names);
- `demand.before_calendar`: a spike run has written a quarter's history shards, not its
  calendar (`=2`: the second quarter's, the first's complete); the days are not loaded yet;
- `spikes.day_stored`: a spike run has stored a day's spikes (`=2`: the second day's), its
  lease held.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from functools import cache
from pathlib import Path

__all__ = ["ENV", "ONCE_ENV", "failpoint"]

ENV = "SHOPSTREAM_FAILPOINTS"
ONCE_ENV = "SHOPSTREAM_FAILPOINTS_ONCE"
_reached: Counter[str] = Counter()


@cache
def _armed(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, nth = part.partition("=")
        armed[name.strip()] = int(nth) if nth else 1
    return armed


def failpoint(name: str) -> None:
    """Kills this process with SIGKILL if the failpoint `name` is armed for this time."""
    spec = os.environ.get(ENV)
    if not spec or name not in (armed := _armed(spec)):
        return
    _reached[name] += 1
    if _reached[name] != armed[name]:
        return
    if once := os.environ.get(ONCE_ENV):
        try:  # the first process here claims the point; the others run through
            os.close(os.open(Path(once) / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)
