"""The hard instants every date-sensitive test runs at, and brute-force day arithmetic.

Each instant is a local wall time in a business time zone; together they cover a Monday and
a Sunday, month ends, 31 Dec -> 1 Jan, 29 Feb, both daylight-saving change days in
Europe/Berlin and in America/Sao_Paulo (whose 2018 change put midnight in the gap, and whose
2019 change repeated 23:00-24:00), and starts at 23:59:30 that cross midnight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shopstream.config import Settings
from shopstream.simulator.model import DAILY_PROFILE, WEEKLY_PROFILE

__all__ = [
    "HARD",
    "Instant",
    "brute_day_bounds",
    "by_name",
    "model_mean",
    "poisson_close",
    "settings_at",
]


@dataclass(frozen=True)
class Instant:
    name: str
    local: str  # ISO wall time, no offset
    zone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def at(self) -> datetime:
        """The instant in UTC (the earlier one when the wall time happens twice)."""
        return datetime.fromisoformat(self.local).replace(tzinfo=self.tz).astimezone(UTC)

    def __str__(self) -> str:
        return self.name


HARD = [
    Instant("monday", "2026-12-07T09:30:00", "Europe/Berlin"),
    Instant("sunday", "2026-12-06T18:00:00", "America/Sao_Paulo"),
    Instant("month-end-2359", "2027-04-30T23:59:30", "Europe/Berlin"),
    Instant("new-year-2359", "2026-12-31T23:59:30", "Europe/Berlin"),
    Instant("leap-day", "2028-02-29T12:00:00", "UTC"),
    Instant("after-leap-day", "2028-03-01T00:00:30", "America/Sao_Paulo"),
    Instant("berlin-dst-start", "2026-03-29T12:00:00", "Europe/Berlin"),  # a 23-hour day
    Instant("berlin-dst-end", "2026-10-25T12:00:00", "Europe/Berlin"),  # a 25-hour day
    Instant("sao-paulo-midnight-gap", "2018-11-04T12:00:00", "America/Sao_Paulo"),  # 01:00 start
    Instant("sao-paulo-dst-end-2359", "2019-02-16T23:59:30", "America/Sao_Paulo"),  # 25 hours
    Instant("berlin-dst-end-eve-2359", "2026-10-24T23:59:30", "Europe/Berlin"),
    # The mornings after, so that a backfill of the two days before holds the hard day.
    Instant("new-year-day-after", "2027-01-02T08:00:00", "Europe/Berlin"),
    Instant("berlin-dst-end-after", "2026-10-26T08:00:00", "Europe/Berlin"),
    Instant("sao-paulo-midnight-gap-after", "2018-11-05T08:00:00", "America/Sao_Paulo"),
]


def by_name(*names: str) -> list[Instant]:
    found = [i for i in HARD if i.name in names]
    assert len(found) == len(names), f"unknown instants among {names}"
    return found


def model_mean(
    start: datetime, end: datetime, tz: ZoneInfo, orders_per_day: float,
    spikes: Sequence[tuple[date, float, float]] = (),
) -> float:  # fmt: skip
    """The demand model's mean orders in [start, end), minute by minute from its published
    profiles (independent of its code); `spikes` are (day, multiplier, expected units)."""
    total, t = 0.0, start
    while t < end:
        local = t.astimezone(tz)
        total += orders_per_day / 24 * DAILY_PROFILE[local.hour] * WEEKLY_PROFILE[local.weekday()]
        for day, multiplier, units in spikes:
            if day == local.date():
                total += (multiplier - 1) * units * DAILY_PROFILE[local.hour] / DAILY_PROFILE.sum()
        t += timedelta(minutes=1)
    return float(total / 60)


def poisson_close(count: int, mean: float) -> bool:
    """A Poisson count within 5 standard deviations of its mean (a miss has p < 1e-6)."""
    return abs(count - mean) <= 5 * math.sqrt(mean) + 1


def brute_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[first, last + 1 minute) of the UTC minutes whose local date is `day`, by scanning."""
    probe = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=30)
    minutes = [probe + timedelta(minutes=m) for m in range(60 * 80)]
    inside = [m for m in minutes if m.astimezone(tz).date() == day]
    return inside[0], inside[-1] + timedelta(minutes=1)


def settings_at(settings: Settings, instant: Instant, **overrides: Any) -> Settings:
    """`settings` with a running clock that reads `instant` now, in its time zone."""
    offset = (instant.at - datetime.now(UTC)).total_seconds()
    return settings.model_copy(
        update={"business_timezone": instant.zone, "clock_offset_s": offset, **overrides}
    )
