"""The dashboard's time windows and the rollup buckets that cover them (pure; no I/O).

Rollups exist per UTC minute, UTC hour and business day (`SHOPSTREAM_BUSINESS_TIMEZONE`), so
any minute-aligned span is covered exactly by a few buckets: minutes up to the next hour,
hours up to the next business midnight, whole days, then hours and minutes again. Thirty days
take at most 30 days + 2 * 23 hours + 2 * 59 minutes: ~200 lookups instead of 43,200.

KPI windows end at the last complete minute, so that a window and the previous one of the
same length are like for like (the minute in progress shows in the trend, drawn as filling):

- `15m`, `1h`, `7d`, `30d`: the last 15 minutes, hour, 7 or 30 days; previous = the span of
  the same length just before;
- `today`: since the business day's midnight; previous = yesterday from midnight to the same
  time of day (the same length, except across a daylight-saving change);
- `all`: everything (no previous window).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from shopstream.domain.clock import day_bounds
from shopstream.domain.documents import hour_key, minute_key

__all__ = [
    "DAY",
    "HOUR",
    "MINUTE",
    "WINDOWS",
    "Bucket",
    "Span",
    "cover",
    "day_span",
    "granularity",
    "spans",
    "trend_buckets",
]

MINUTE, HOUR, DAY = "minute", "hour", "day"
WINDOWS = {
    "15m": "Last 15 minutes",
    "1h": "Last hour",
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "all": "All time",
}
_LENGTHS = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
_ONE = {MINUTE: timedelta(minutes=1), HOUR: timedelta(hours=1)}


@dataclass(frozen=True)
class Span:
    """A half-open UTC interval `[start, end)`."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Bucket:
    """A rollup bucket: its level, `_id` (without the level) and UTC interval."""

    level: str
    key: str
    start: datetime
    end: datetime


def _minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def day_span(day: date, tz: tzinfo) -> Span:
    """A business day as a UTC span (23 or 25 hours across a daylight-saving change)."""
    return Span(*day_bounds(day, tz))


def _local_day(at: datetime, tz: tzinfo) -> date:
    return at.astimezone(tz).date()


def spans(window: str, now: datetime, tz: tzinfo) -> tuple[Span | None, Span | None]:
    """(the window, the previous window of the same length); `(None, None)` for `all`."""
    end = _minute(now)
    if window == "all":
        return None, None
    if window == "today":
        today = _local_day(now, tz)
        midnight = day_span(today, tz).start
        yesterday = day_span(today - timedelta(days=1), tz).start
        return Span(midnight, end), Span(yesterday, yesterday + (end - midnight))
    length = _LENGTHS[window]
    return Span(end - length, end), Span(end - 2 * length, end - length)


def cover(span: Span, tz: tzinfo) -> list[Bucket]:
    """The fewest rollup buckets whose union is exactly `span` (minute-aligned)."""
    out: list[Bucket] = []
    at, end = _minute(span.start), span.end
    while at < end:
        day = day_span(_local_day(at, tz), tz)
        if at == day.start and day.end <= end:
            out.append(Bucket(DAY, _local_day(at, tz).isoformat(), day.start, day.end))
            at = day.end
            continue
        hour_end = at + _ONE[HOUR]
        # A whole UTC hour, unless a business midnight falls inside it (half-hour zones).
        if at.minute == 0 and hour_end <= end and not at < day.end < hour_end:
            out.append(Bucket(HOUR, hour_key(at), at, hour_end))
            at = hour_end
            continue
        out.append(Bucket(MINUTE, minute_key(at), at, at + _ONE[MINUTE]))
        at += _ONE[MINUTE]
    return out


def granularity(window: str) -> str:
    """The trend's bucket size: minutes up to an hour, hours up to a week, days beyond."""
    return {"15m": MINUTE, "1h": MINUTE, "today": HOUR, "7d": HOUR}.get(window, DAY)


def trend_buckets(
    window: str, now: datetime, tz: tzinfo, first_day: date | None = None
) -> list[Bucket]:
    """The trend's buckets, oldest first; the last one holds `now` and is still filling.

    `first_day` (the oldest business day with orders) starts the `all` trend; without it the
    trend of `all` is today alone.
    """
    level = granularity(window)
    if level == DAY:
        today = _local_day(now, tz)
        first = today - timedelta(days=29) if window == "30d" else min(first_day or today, today)
        days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
        return [Bucket(DAY, d.isoformat(), *_bounds(day_span(d, tz))) for d in days]
    step = _ONE[level]
    last = _minute(now) if level == MINUTE else _minute(now).replace(minute=0)
    if window == "today":
        midnight = day_span(_local_day(now, tz), tz).start
        first_start = midnight.replace(minute=0)  # the UTC hour holding midnight
        count = int((last - first_start) / step) + 1
    else:
        count = {"15m": 15, "1h": 60, "7d": 7 * 24}[window]
    starts = [last - step * (count - 1 - i) for i in range(count)]
    keyed = minute_key if level == MINUTE else hour_key
    return [Bucket(level, keyed(s), s, s + step) for s in starts]


def _bounds(span: Span) -> tuple[datetime, datetime]:
    return span.start, span.end
