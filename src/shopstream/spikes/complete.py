"""Is business day D complete, so that its demand can be read? (The daily DAG's sensor.)

Day D is complete when
1. the lake's event-time watermark (published by the landing query, `shopstream lake
   watermark`) has passed the end of D in the business timezone plus a grace period: no
   order of D is still expected, beyond the watermark's own allowance for lateness; and
2. the enrichment query, which writes the rollups the demand is read from, has read the topic
   at least as far as the landing query had (their `stream_status` offsets): every record
   the watermark accounts for is in the rollups too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta, tzinfo

from shopstream.config import Settings
from shopstream.domain.clock import day_bounds
from shopstream.store.protocols import Store
from shopstream.store.records import QueryProgress
from shopstream.streaming.committed import watermark_passed

__all__ = ["Completeness", "day_complete"]


@dataclass(frozen=True)
class Completeness:
    complete: bool
    reason: str


def _behind(enrich: QueryProgress, lake: QueryProgress) -> list[str]:
    behind = []
    for topic, partitions in lake.end_offsets.items():
        have = enrich.end_offsets.get(topic, {})
        for part, offset in partitions.items():
            if int(have.get(part, -1)) < int(offset):
                behind.append(f"{topic}[{part}] {have.get(part, 'none')} < {offset}")
    return behind


def day_complete(
    settings: Settings, store: Store, day: date, tz: tzinfo, grace: timedelta
) -> Completeness:
    _, end = day_bounds(day, tz)
    passed, reason = watermark_passed(
        settings, end + grace, f"{day} (its end in {tz} plus {grace} of grace)"
    )
    if not passed:
        return Completeness(False, reason)
    lake, enrich = store.status.query_progress("lake"), store.status.query_progress("enrich")
    if not lake or not enrich:
        return Completeness(False, "the streaming queries have not published their progress yet")
    behind = _behind(enrich, lake)
    if behind:
        return Completeness(
            False, f"the enrichment is behind the lake on {len(behind)} partitions: {behind[:3]}"
        )
    return Completeness(True, reason)
