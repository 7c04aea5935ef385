"""What a scenario measured (`Run`) and its summary (`Measurement`), as stored in the JSON."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Measurement", "Run", "percentile", "summarize"]

_MAX_ERROR_SAMPLES = 5


@dataclass
class Run:
    """Raw observations of one scenario inside its measurement window."""

    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, one per completed unit
    outcomes: Counter[str] = field(default_factory=Counter)  # HTTP status or "acked"
    errors: list[str] = field(default_factory=list)  # a few samples
    error_count: int = 0  # transport/broker errors, beside unexpected outcomes
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # process -> CPU used

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < _MAX_ERROR_SAMPLES:
            self.errors.append(message)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile of `values` (sorted here); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Measurement:
    key: str
    title: str
    latency_of: str
    seconds: float
    orders: int
    requests: int
    orders_per_s: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_samples: list[str]
    outcomes: dict[str, int]
    cpu_cores: dict[str, float]  # average cores busy in the window, per process
    cpu_us_per_order: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    key: str, title: str, run: Run, *, ok: str, orders_per_unit: int, latency_of: str
) -> Measurement:
    """Throughput counts `ok` outcomes only; everything else is an error."""
    ok_units = run.outcomes.get(ok, 0)
    orders = ok_units * orders_per_unit
    done = sum(run.outcomes.values())
    lat_ms = [x * 1000 for x in run.latencies]
    return Measurement(
        key=key,
        title=title,
        latency_of=latency_of,
        seconds=run.seconds,
        orders=orders,
        requests=done,
        orders_per_s=orders / run.seconds,
        requests_per_s=done / run.seconds,
        p50_ms=percentile(lat_ms, 50),
        p90_ms=percentile(lat_ms, 90),
        p99_ms=percentile(lat_ms, 99),
        max_ms=max(lat_ms, default=math.nan),
        errors=run.error_count + done - ok_units,
        error_samples=run.errors,
        outcomes=dict(run.outcomes),
        cpu_cores={k: v / run.seconds for k, v in run.cpu_seconds.items()},
        cpu_us_per_order={k: v / orders * 1e6 for k, v in run.cpu_seconds.items() if orders},
    )
