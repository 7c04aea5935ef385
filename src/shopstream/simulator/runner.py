"""`shopstream simulate`: live traffic at a rate, or a backfill of past days, via the API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from shopstream.domain.clock import Clock, day_bounds
from shopstream.simulator.catalog import customer_rows
from shopstream.simulator.model import DemandModel, Spike
from shopstream.simulator.sender import OrderSender, SendStats

__all__ = [
    "Signups",
    "backfill",
    "backfill_days",
    "live",
    "load_catalog",
    "parse_spike",
    "parse_surge",
    "write_truth",
]

log = logging.getLogger(__name__)

Tick = Callable[[SendStats, str], None]  # progress callback: (stats, what happened)


def load_catalog(dsn: str) -> tuple[np.ndarray, np.ndarray]:
    """(product ids by popularity rank, customer ids) from PostgreSQL."""
    with psycopg.connect(dsn) as conn:
        products = conn.execute("SELECT id FROM products ORDER BY popularity DESC, id").fetchall()
        customers = conn.execute("SELECT id FROM customers ORDER BY id").fetchall()
    return (
        np.array([r[0] for r in products], dtype=np.int64),
        np.array([r[0] for r in customers], dtype=np.int64),
    )


class Signups:
    """New customers signing up while the simulation runs (written to PostgreSQL)."""

    def __init__(self, dsn: str, per_day: float, seed: int) -> None:
        self._dsn = dsn
        self._per_day = per_day
        self._rng = np.random.default_rng([seed, 11])
        self._seed = seed
        self.count = 0

    def between(self, lo: datetime, hi: datetime) -> list[int]:
        """Signs up a Poisson number of customers in [lo, hi); returns their new ids."""
        expected = self._per_day * (hi - lo).total_seconds() / 86400
        n = int(self._rng.poisson(expected))
        if n == 0:
            return []
        # Reuse the catalog's realistic rows; the database assigns the ids.
        offset = 10_000_000 + int(self._rng.integers(0, 1_000_000_000))
        rows = list(customer_rows(self._seed, offset, offset + n))
        span = (hi - lo).total_seconds()
        with psycopg.connect(self._dsn) as conn, conn.cursor() as cur:
            ids = []
            for row in rows:
                at = lo + timedelta(seconds=float(self._rng.random() * span))
                cur.execute(
                    "INSERT INTO customers (name, email, city, country, segment, signup_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (*row[1:6], at),
                )
                ids.append(cur.fetchone()[0])  # type: ignore[index]
        self.count += n
        return ids


def backfill_days(today: date, days: int) -> list[date]:
    """The `days` business days before `today`, oldest first."""
    return [today - timedelta(days=d) for d in range(days, 0, -1)]


async def backfill(
    model: DemandModel,
    sender: OrderSender,
    signups: Signups,
    days: int,
    clock: Clock,
    batch_size: int = 500,
    tick: Tick = lambda s, m: None,
) -> SendStats:
    """Sends `days` full business days of history before the clock's today, hour by hour."""
    today = clock.in_zone(model.tz).today()
    start, _ = day_bounds(today - timedelta(days=days), model.tz)
    end, _ = day_bounds(today, model.tz)
    hour = start
    while hour < end:
        nxt = min(hour + timedelta(hours=1), end)
        model.add_customers(await asyncio.to_thread(signups.between, hour, nxt))
        orders = model.generate(hour, nxt)
        batches = [orders[i : i + batch_size] for i in range(0, len(orders), batch_size)]
        await asyncio.gather(*(sender.send_batch(b) for b in batches))
        tick(sender.stats, hour.astimezone(model.tz).strftime("%Y-%m-%d %H:00"))
        hour = nxt
    return sender.stats


async def live(
    model: DemandModel,
    sender: OrderSender,
    signups: Signups,
    duration: float | None,
    clock: Clock,
    step: float = 0.25,
    tick: Tick = lambda s, m: None,
) -> SendStats:
    """Sends orders as they happen by `clock`, one request per order, until `duration` (or
    forever)."""
    loop = asyncio.get_running_loop()
    stop_at = None if duration is None else loop.time() + duration
    last = clock.now()
    in_flight: set[asyncio.Task[bool]] = set()
    while stop_at is None or loop.time() < stop_at:
        await asyncio.sleep(step)
        now = clock.now()
        model.add_customers(await asyncio.to_thread(signups.between, last, now))
        for order in model.generate(last, now):
            task = asyncio.create_task(sender.send_one(order))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        last = now
        tick(sender.stats, f"{len(in_flight)} in flight")
    if in_flight:
        await asyncio.gather(*in_flight)
    return sender.stats


def write_truth(path: Path, model: DemandModel, meta: dict[str, Any]) -> None:
    """The injected spikes, for checking the spike detector against ground truth."""
    spikes = [
        {
            "product_id": s.product_id,
            "day": s.day.isoformat(),
            "multiplier": s.multiplier,
            "expected_units_without_spike": round(model.expected_units(s.product_id, s.day), 2),
            "injected_orders": model.injected[s],
        }
        for s in sorted(model.spikes, key=lambda s: (s.day, s.product_id))
    ]
    per_day = [
        {
            "day": day.isoformat(),
            "expected_orders": round(model.expected[day], 2),
            "generated_orders": model.generated[day],
        }
        for day in sorted(model.generated)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    surges = {day.isoformat(): factor for day, factor in sorted(model.surges.items())}
    document = {**meta, "per_day": per_day, "spikes": spikes, "surges": surges}
    path.write_text(json.dumps(document, indent=2) + "\n")


def parse_surge(text: str) -> tuple[date, float]:
    """`YYYY-MM-DD:FACTOR`, e.g. `2026-11-27:1.8`: the whole store's orders x1.8 that day."""
    try:
        day, factor = text.split(":")
        value = float(factor)
    except ValueError:
        raise ValueError(f"bad surge {text!r}; expected YYYY-MM-DD:FACTOR") from None
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"bad surge {text!r}; expected YYYY-MM-DD:FACTOR") from None
    if value <= 0:
        raise ValueError(f"bad surge {text!r}: the factor must be positive")
    return when, value


def parse_spike(text: str) -> Spike:
    """`PRODUCT_ID:YYYY-MM-DD:MULTIPLIER`, e.g. `42:2026-11-20:4`."""
    try:
        pid, day, mult = text.split(":")
        return Spike(int(pid), date.fromisoformat(day), float(mult))
    except ValueError:
        raise ValueError(f"bad spike {text!r}; expected PRODUCT_ID:YYYY-MM-DD:MULTIPLIER") from None
