"""The dashboard's windows and the buckets that cover them (pure)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shopstream.domain.windows import Span, cover, day_span, spans, trend_buckets

NOW = datetime(2026, 11, 28, 14, 5, 30, tzinfo=UTC)
NEW_YORK, KOLKATA = ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_windows_end_at_the_last_complete_minute_and_compare_like_for_like() -> None:
    current, previous = spans("15m", NOW, UTC)
    assert current == Span(at("2026-11-28T13:50"), at("2026-11-28T14:05"))
    assert previous == Span(at("2026-11-28T13:35"), at("2026-11-28T13:50"))
    current, previous = spans("30d", NOW, UTC)
    assert current is not None
    assert previous is not None
    assert current.length == previous.length == timedelta(days=30)
    assert previous.end == current.start
    assert spans("all", NOW, UTC) == (None, None)


def test_today_is_the_business_day_so_far_against_yesterday_to_the_same_time() -> None:
    current, previous = spans("today", NOW, NEW_YORK)  # 09:05 in New York
    assert current == Span(at("2026-11-28T05:00"), at("2026-11-28T14:05"))
    assert previous == Span(at("2026-11-27T05:00"), at("2026-11-27T14:05"))


def test_a_business_day_is_23_or_25_hours_across_daylight_saving() -> None:
    assert day_span(date(2026, 11, 1), NEW_YORK).length == timedelta(hours=25)
    assert day_span(date(2026, 3, 8), NEW_YORK).length == timedelta(hours=23)
    assert day_span(date(2026, 11, 28), KOLKATA).start == at("2026-11-27T18:30")


def assert_exact(span: Span, tz: ZoneInfo) -> list[str]:
    buckets = cover(span, tz)
    assert buckets[0].start == span.start
    assert buckets[-1].end == span.end
    for left, right in itertools.pairwise(buckets):
        assert left.end == right.start
    return [b.level for b in buckets]


def test_thirty_days_take_whole_days_hours_at_the_edges_and_minutes_beyond() -> None:
    current, _ = spans("30d", NOW, UTC)
    assert current is not None
    levels = assert_exact(current, UTC)
    # 14:05 on Oct 29 -> 14:05 on Nov 28: 55 minutes, 9 hours, 29 days, 14 hours, 5 minutes.
    assert levels.count("minute") == 55 + 5
    assert levels.count("hour") == 9 + 14
    assert levels.count("day") == 29
    keys = [b.key for b in cover(current, UTC)]
    assert keys[0] == "2026-10-29T14:05Z"
    assert "2026-10-30" in keys
    assert "2026-11-27" in keys
    assert "2026-11-28" not in keys
    assert keys[-1] == "2026-11-28T14:04Z"


def test_a_half_hour_zone_never_puts_a_business_midnight_inside_an_hour() -> None:
    span = Span(at("2026-11-20T10:00"), at("2026-11-28T14:05"))
    buckets = cover(span, KOLKATA)
    assert_exact(span, KOLKATA)
    days = [b for b in buckets if b.level == "day"]
    assert days
    assert all(b.start.minute == 30 for b in days)
    assert len(buckets) < 7 * 24


@pytest.mark.parametrize("tz", [UTC, NEW_YORK, KOLKATA, ZoneInfo("Asia/Kathmandu")])
def test_random_spans_are_covered_exactly(tz: ZoneInfo) -> None:
    rng = random.Random(7)
    for _ in range(200):
        start = at("2026-10-25T00:00") + timedelta(minutes=rng.randrange(60 * 24 * 20))
        span = Span(start, start + timedelta(minutes=rng.randrange(1, 60 * 24 * 12)))
        levels = assert_exact(span, tz)
        # Bounded whatever the span: minutes at both edges and beside a half-hour midnight.
        assert len(levels) <= 4 * 59 + 2 * 24 + 13


def test_trend_granularity_follows_the_window() -> None:
    minutes = trend_buckets("15m", NOW, UTC)
    assert [b.key for b in minutes[-2:]] == ["2026-11-28T14:04Z", "2026-11-28T14:05Z"]
    assert len(minutes) == 15
    assert minutes[-1].start <= NOW < minutes[-1].end
    assert len(trend_buckets("1h", NOW, UTC)) == 60
    hours = trend_buckets("today", NOW, UTC)
    assert [b.key for b in hours[:1] + hours[-1:]] == ["2026-11-28T00Z", "2026-11-28T14Z"]
    assert len(trend_buckets("7d", NOW, UTC)) == 168
    days = trend_buckets("30d", NOW, NEW_YORK)
    assert (len(days), days[-1].key, days[0].key) == (30, "2026-11-28", "2026-10-30")
    everything = trend_buckets("all", NOW, UTC, first_day=date(2026, 11, 20))
    assert [b.key for b in everything][:2] == ["2026-11-20", "2026-11-21"]
    assert len(everything) == 9
