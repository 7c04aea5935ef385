"""A known demand dataset for the spike detector, and a day made "complete" for its sensor."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shopstream.store.protocols import Store
from shopstream.streaming.committed import WATERMARK_FILE
from tests.utils.orders import order_doc

__all__ = [
    "DAYS",
    "FIRST",
    "LOCAL_HOURS",
    "NEWCOMER",
    "SPIKER",
    "SPIKE_DAY",
    "STEADY",
    "at_local",
    "dataset",
    "mark_complete",
    "write_watermark",
]

FIRST = date(2026, 9, 1)
DAYS = 40
SPIKE_DAY = FIRST + timedelta(days=35)
SPIKER, NEWCOMER, STEADY = 3, 6, (1, 2, 3, 4, 5)
LOCAL_HOURS = (1, 9, 15, 23)  # 23:xx New York is the next UTC day


def at_local(day: date, hour: int, minute: int, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def dataset(tz: ZoneInfo) -> list[dict[str, Any]]:
    """Products 1-5 sell 8-12 units a day in four orders spread over the local day; product 3
    sells 60 on SPIKE_DAY, to 60 buyers; product 6 starts 10 days before it (too little
    history) and sells 80 that day. Unit price: 1000 + product id cents."""
    rng = random.Random(9)
    orders = []
    for i in range(DAYS):
        day = FIRST + timedelta(days=i)
        for pid in (*STEADY, NEWCOMER):
            if pid == NEWCOMER and day < SPIKE_DAY - timedelta(days=10):
                continue
            units = 60 if (pid == SPIKER and day == SPIKE_DAY) else rng.randint(8, 12)
            if pid == NEWCOMER and day == SPIKE_DAY:
                units = 80
            parts = [units // 4 + (1 if k < units % 4 else 0) for k in range(4)]
            for hour, qty in zip(LOCAL_HOURS, parts, strict=True):
                # a spike is many buyers (one unit each), an ordinary day four orders
                sizes = [1] * qty if units >= 60 else [qty]
                for size in sizes:
                    at = at_local(day, hour, rng.randint(0, 59), tz)
                    orders.append(order_doc(rng.randint(1, 50), at, [(pid, size, 1000 + pid)]))
    return orders


def write_watermark(lake: Path, through: datetime) -> None:
    """The landing query's watermark file (`<lake>/orders/_watermark.json`) at `through`."""
    (lake / "orders").mkdir(parents=True, exist_ok=True)
    doc = {
        "watermark": through.astimezone(UTC).isoformat(),
        "complete_through": (through.astimezone(UTC).date() - timedelta(days=1)).isoformat(),
        "max_event_time": through.astimezone(UTC).isoformat(),
        "batch_id": 1,
        "published_at": through.astimezone(UTC).isoformat(),
    }
    (lake / "orders" / WATERMARK_FILE).write_text(json.dumps(doc))


def mark_complete(store: Store, lake: Path, through: datetime) -> None:
    """What the streaming job publishes once it has processed everything up to `through`: the
    landing query's watermark (`<lake>/orders/_watermark.json`) and both queries' progress
    (the enrichment level with the lake). For tests that write the stores directly."""
    write_watermark(lake, through)
    for name in ("lake", "enrich"):
        store.status.publish_progress(
            {
                "name": name,
                "id": f"test-{name}",
                "batchId": 1,
                "timestamp": through.astimezone(UTC).isoformat(),
                "sources": [{"endOffset": {"orders": {"0": 7}}}],
            }
        )
        published = store.status.query_progress(name)
        assert published is not None
        assert published.end_offsets == {"orders": {"0": 7}}
