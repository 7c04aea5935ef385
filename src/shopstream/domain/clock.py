"""The one clock: what "now", "today" and "a business day" mean, in one place.

Every part that decides which day it is (the simulator's backfill and live loop, the spike
runs, the dashboard's windows, the warehouse's default day, the demo) takes a `Clock` instead
of reading the wall clock, so tests pin the date and time zone. The real clock is the
default; `Settings.clock` builds it from `SHOPSTREAM_CLOCK_*` (docs/time.md).

What stays on the real clock: Kafka's record timestamps, Spark's batch times and the
streaming job's `processed_at`/latency stamps (they measure the pipeline, not the calendar);
docs/time.md says which tests cover which.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["UTC_ZONE", "Clock", "day_bounds", "local_day"]

UTC_ZONE = ZoneInfo("UTC")


def local_day(at: datetime, zone: tzinfo) -> date:
    """The business day an instant falls on."""
    return at.astimezone(zone).date()


def _day_start(day: date, zone: tzinfo) -> datetime:
    """The first instant (UTC) whose local date is `day`, also when midnight falls in a
    daylight-saving gap (America/Sao_Paulo 2018-11-04 began at 01:00) or happens twice."""
    naive = datetime(day.year, day.month, day.day)
    candidates = sorted(naive.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
    if local_day(candidates[0], zone) == day:
        return candidates[0]
    lo, hi = candidates  # a gap across midnight: the day starts at the transition, in (lo, hi]
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        lo, hi = (lo, mid) if local_day(mid, zone) == day else (mid, hi)
    return hi.replace(microsecond=0)


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of a business day, in UTC: 23 or 25 hours across a DST change."""
    return _day_start(day, zone), _day_start(day + timedelta(days=1), zone)


@dataclass(frozen=True)
class Clock:
    """Real time, shifted by `offset`, or stopped at `frozen_at`; days in `zone`.

    `now()` is always an aware UTC datetime. A shifted clock advances in real time, so a
    whole stack of processes given the same offset agrees on "now" (a test that starts the
    simulator at 23:59:30 local time sees it cross midnight 30 s later).
    """

    zone: ZoneInfo = UTC_ZONE
    offset: timedelta = timedelta(0)
    frozen_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.frozen_at is not None and self.frozen_at.tzinfo is None:
            raise ValueError("Clock.frozen_at must be timezone-aware")

    @classmethod
    def real(cls, zone: str | ZoneInfo = "UTC") -> Clock:
        return cls(_zone(zone))

    @classmethod
    def fixed(cls, at: datetime, zone: str | ZoneInfo = "UTC") -> Clock:
        """A stopped clock (pure logic and unit tests)."""
        return cls(_zone(zone), frozen_at=at.astimezone(UTC))

    @classmethod
    def starting_at(cls, at: datetime, zone: str | ZoneInfo = "UTC") -> Clock:
        """A running clock that reads `at` now and advances in real time."""
        return cls(_zone(zone), offset=at.astimezone(UTC) - datetime.now(UTC))

    def now(self) -> datetime:
        if self.frozen_at is not None:
            return self.frozen_at
        now = datetime.now(UTC)
        return now + self.offset if self.offset else now  # the API stamps every request

    def local_now(self) -> datetime:
        return self.now().astimezone(self.zone)

    def today(self) -> date:
        return local_day(self.now(), self.zone)

    def yesterday(self) -> date:
        return self.today() - timedelta(days=1)

    def day_of(self, at: datetime) -> date:
        return local_day(at, self.zone)

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        return day_bounds(day, self.zone)

    def in_zone(self, zone: str | ZoneInfo) -> Clock:
        return Clock(_zone(zone), self.offset, self.frozen_at)


def _zone(zone: str | ZoneInfo) -> ZoneInfo:
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
