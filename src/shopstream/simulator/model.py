"""The demand model: when orders happen, who places them and what they contain (pure).

- Orders arrive as a Poisson process whose rate follows a daily and a weekly profile in
  the business timezone (both normalised so `orders_per_day` is the weekly average).
- Products are drawn by Zipf over their popularity rank; customers by a lognormal
  activity weight, so a few customers order often.
- Injected spikes multiply one product's expected units on one (business) day; the extra
  units arrive as additional orders through the day, and are counted as ground truth.
- Store-wide surges (`surges`: business day -> factor, a sale or a holiday) multiply the
  whole store's order rate on a day; the detector reports such a day as one store event.
- Everything comes from one seeded generator: the same seed and windows give the same
  orders, order ids included, so a rerun backfill is deduplicated downstream. An order id is
  derived from the seed and the order itself (time, customer, sequence), so other windows (a
  live run after a backfill) never reuse one.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

__all__ = [
    "DAILY_PROFILE",
    "WEEKLY_PROFILE",
    "DemandModel",
    "Spike",
    "plan_spikes",
]

# Relative order intensity per local hour: quiet nights, a lunch bump, an evening peak.
_DAILY = np.array(
    [
        0.25,
        0.15,
        0.10,
        0.08,
        0.08,
        0.12,
        0.30,
        0.55,
        0.80,
        0.95,
        1.05,
        1.15,
        1.30,
        1.25,
        1.10,
        1.05,
        1.10,
        1.25,
        1.50,
        1.75,
        1.85,
        1.60,
        1.10,
        0.55,
    ]
)
DAILY_PROFILE = _DAILY / _DAILY.mean()
# Monday .. Sunday: weekends sell more.
_WEEKLY = np.array([0.90, 0.88, 0.92, 0.95, 1.05, 1.20, 1.10])
WEEKLY_PROFILE = _WEEKLY / _WEEKLY.mean()

_ITEM_COUNTS = np.arange(1, 6)
_ITEM_COUNT_P = np.array([0.45, 0.25, 0.15, 0.10, 0.05])
_QUANTITY_P = 0.72  # geometric: P(quantity = 1) = 0.72
_MAX_QUANTITY = 10


@dataclass(frozen=True)
class Spike:
    """Product `product_id` sells `multiplier` times its usual units on business day `day`."""

    product_id: int
    day: date
    multiplier: float


def _mean_quantity() -> float:
    q = np.arange(1, _MAX_QUANTITY + 1)
    p = _QUANTITY_P * (1 - _QUANTITY_P) ** (q - 1)
    return float((q * p).sum() / p.sum())


_ORDER_NAMESPACE = uuid.UUID("5d3c1d8e-7f4a-4d3b-9a57-3f0c2b6e9e01")  # shopstream's orders


class DemandModel:
    """Generates order payloads (as `POST /order` bodies) for time windows."""

    def __init__(
        self,
        products_by_rank: np.ndarray,
        customer_ids: np.ndarray,
        orders_per_day: float,
        seed: int,
        timezone: str = "UTC",
        zipf_s: float = 1.1,
        spikes: tuple[Spike, ...] = (),
    ) -> None:
        if len(products_by_rank) == 0 or len(customer_ids) == 0:
            raise ValueError("the catalog is empty: run `shopstream seed` first")
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self._issued = 0
        self.tz = ZoneInfo(timezone)
        self.orders_per_day = orders_per_day
        self.products = np.asarray(products_by_rank, dtype=np.int64)
        weights = 1.0 / np.arange(1, len(self.products) + 1) ** zipf_s
        self.product_p = weights / weights.sum()
        self._product_cum = np.cumsum(self.product_p)
        self._index_of = {int(p): i for i, p in enumerate(self.products)}
        self.customers = np.asarray(customer_ids, dtype=np.int64)
        self._activity = self.rng.lognormal(0.0, 1.0, len(self.customers))
        self._customer_cum = np.cumsum(self._activity)
        self.spikes = spikes
        self.surges: dict[date, float] = {}  # business day -> the store's order rate factor
        self.injected: Counter[Spike] = Counter()
        # Per business day of what `generate` covered: the model's mean and the orders drawn.
        self.expected: defaultdict[date, float] = defaultdict(float)
        self.generated: Counter[date] = Counter()
        # Expected distinct-product lines per order, times units per line.
        self.units_per_order = float((_ITEM_COUNTS * _ITEM_COUNT_P).sum()) * _mean_quantity()

    # ------------------------------------------------------------------ rates

    def hourly_rate(self, local: datetime) -> float:
        """Expected orders per hour at this local time (a surge day's included)."""
        surge = self.surges.get(local.date(), 1.0)
        shape = DAILY_PROFILE[local.hour] * WEEKLY_PROFILE[local.weekday()]
        return self.orders_per_day / 24 * shape * surge

    def calibrate(self, per_second: float, at: datetime) -> None:
        """Sets the level so that the rate at `at` is `per_second` orders/s."""
        local = at.astimezone(self.tz)
        shape = DAILY_PROFILE[local.hour] * WEEKLY_PROFILE[local.weekday()]
        self.orders_per_day = per_second * 86400 / shape

    def expected_units(self, product_id: int, day: date) -> float:
        """Units of the product expected on a business day without spikes."""
        share = self.product_p[self._index_of[product_id]]
        return self.orders_per_day * WEEKLY_PROFILE[day.weekday()] * self.units_per_order * share

    def add_customers(self, ids: list[int]) -> None:
        """New signups join the pool with an average activity weight."""
        if not ids:
            return
        self.customers = np.concatenate([self.customers, np.asarray(ids, dtype=np.int64)])
        self._activity = np.concatenate([self._activity, np.full(len(ids), np.e**0.5)])
        self._customer_cum = np.cumsum(self._activity)

    # ------------------------------------------------------------------ generation

    def expected_orders(self, start: datetime, end: datetime) -> float:
        """The mean number of orders `generate(start, end)` draws (spike orders included):
        what tests compare a run against, on any date, in any time zone."""
        total = 0.0
        for lo, hi, local in self._hour_slices(start, end):
            fraction = (hi - lo).total_seconds() / 3600
            total += self.hourly_rate(local) * fraction
            total += sum(
                self._spike_rate(s, local) * fraction for s in self.spikes if s.day == local.date()
            )
        return total

    def generate(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Orders created in [start, end), sorted by `created_at`."""
        orders: list[dict[str, Any]] = []
        for lo, hi, local in self._hour_slices(start, end):
            fraction = (hi - lo).total_seconds() / 3600
            mean = self.hourly_rate(local) * fraction
            before = len(orders)
            orders += self._orders(lo, hi, int(self.rng.poisson(mean)))
            for spike in self.spikes:
                if spike.day == local.date():
                    extra = self._spike_rate(spike, local) * fraction
                    orders += self._spike_orders(spike, lo, hi, extra)
                    mean += extra
            self.expected[local.date()] += mean
            self.generated[local.date()] += len(orders) - before
        orders.sort(key=lambda o: o["created_at"])
        return orders

    def _hour_slices(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[datetime, datetime, datetime]]:
        """[lo, hi) pieces of the window that stay within one local hour, with lo's local time."""
        t = start
        while t < end:
            local = t.astimezone(self.tz)
            next_hour = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            hi = min(end, next_hour.astimezone(start.tzinfo))
            yield t, hi, local
            t = hi

    def _times(self, lo: datetime, hi: datetime, count: int) -> list[datetime]:
        span = (hi - lo).total_seconds()
        offsets = np.sort(self.rng.random(count)) * span
        return [lo + timedelta(seconds=float(s)) for s in offsets]

    def _customer_sample(self, count: int) -> np.ndarray:
        picks = np.searchsorted(self._customer_cum, self.rng.random(count) * self._customer_cum[-1])
        return self.customers[np.minimum(picks, len(self.customers) - 1)]

    def _product_sample(self, count: int) -> np.ndarray:
        picks = np.searchsorted(self._product_cum, self.rng.random(count) * self._product_cum[-1])
        return self.products[np.minimum(picks, len(self.products) - 1)]

    def _quantities(self, count: int) -> np.ndarray:
        return np.minimum(self.rng.geometric(_QUANTITY_P, count), _MAX_QUANTITY)

    def _order_id(self, when: datetime, customer: int) -> str:
        # Not the generator's next bytes: a live run with the backfill's seed would draw the
        # backfill's ids again, and the pipeline would drop those orders as resends.
        self._issued += 1
        name = f"{self.seed}|{when.isoformat()}|{customer}|{self._issued}"
        return str(uuid.uuid5(_ORDER_NAMESPACE, name))

    def _orders(self, lo: datetime, hi: datetime, count: int) -> list[dict[str, Any]]:
        if count == 0:
            return []
        times = self._times(lo, hi, count)
        customers = self._customer_sample(count)
        sizes = self.rng.choice(_ITEM_COUNTS, count, p=_ITEM_COUNT_P)
        products = self._product_sample(int(sizes.sum()))
        quantities = self._quantities(int(sizes.sum()))
        orders, pos = [], 0
        for when, customer, size in zip(times, customers, sizes, strict=True):
            lines: dict[int, int] = {}
            for product, qty in zip(
                products[pos : pos + size], quantities[pos : pos + size], strict=True
            ):
                lines.setdefault(int(product), int(qty))  # a product appears once per order
            pos += size
            orders.append(self._payload(when, int(customer), lines))
        return orders

    def _spike_rate(self, spike: Spike, local: datetime) -> float:
        """Extra (one-unit) orders per hour a spike adds at this local time."""
        extra_units = (spike.multiplier - 1) * self.expected_units(spike.product_id, spike.day)
        return float(extra_units * DAILY_PROFILE[local.hour] / DAILY_PROFILE.sum())

    def _spike_orders(
        self, spike: Spike, lo: datetime, hi: datetime, mean: float
    ) -> list[dict[str, Any]]:
        count = int(self.rng.poisson(mean))
        orders = []
        for when, customer in zip(
            self._times(lo, hi, count), self._customer_sample(count), strict=True
        ):
            lines = {spike.product_id: 1}
            if self.rng.random() < 0.3:  # sometimes bought together with something else
                lines.setdefault(int(self._product_sample(1)[0]), 1)
            orders.append(self._payload(when, int(customer), lines))
        self.injected[spike] += count
        return orders

    def _payload(self, when: datetime, customer: int, lines: dict[int, int]) -> dict[str, Any]:
        return {
            "order_id": self._order_id(when, customer),
            "customer_id": customer,
            "created_at": when.isoformat(),
            "items": [{"product_id": p, "quantity": q} for p, q in lines.items()],
        }


def plan_spikes(
    products_by_rank: np.ndarray, days: list[date], count: int, seed: int
) -> tuple[Spike, ...]:
    """`count` spikes on popular products (top fifth) on the given days, 3-6x demand."""
    if not days or count <= 0:
        return ()
    rng = np.random.default_rng([seed, 7])
    pool = products_by_rank[: max(1, len(products_by_rank) // 5)]
    chosen = rng.choice(pool, size=min(count, len(pool)), replace=False)
    return tuple(
        Spike(int(p), days[int(rng.integers(0, len(days)))], round(float(rng.uniform(3, 6)), 2))
        for p in chosen
    )
