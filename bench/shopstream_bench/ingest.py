"""`shopstream bench ingest`: the ingestion API against a bare app and a bare producer.

(a) a bare FastAPI endpoint, (b) `POST /order`, (c) `POST /orders` in batches, (d) the
same records produced straight to Kafka, all in one run on one isolated stack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import uvloop

from shopstream.config import Settings
from shopstream.messaging.clients import producer_config
from shopstream_bench import payloads
from shopstream_bench.cpu import CpuMeter
from shopstream_bench.isolated import (
    HOST,
    bare_server,
    free_ports,
    isolated_stack,
    service_pids,
)
from shopstream_bench.kafka_direct import run_direct
from shopstream_bench.loadgen import http_request, run_load
from shopstream_bench.machine import describe_machine
from shopstream_bench.results import Measurement, Run, summarize

__all__ = ["TARGETS", "BenchError", "IngestOptions", "run_ingest"]

Report = Callable[[str], None]
TARGETS = {"b_over_a": 0.6, "c_orders_per_s": 20_000.0}


@dataclass(frozen=True)
class IngestOptions:
    duration: float = 10.0
    warmup: float = 2.0
    prime: float = 20.0  # unmeasured API traffic before the scenarios (JVM JIT, caches)
    concurrency: int = 32  # connections for (a) and (b)
    batch_size: int = 500
    batch_concurrency: int = 4  # connections for (c)
    orders: int = 50_000  # distinct orders generated, then cycled
    seed: int = 1

    @property
    def kafka_in_flight(self) -> int:
        """(d) keeps as many records unacknowledged as (c) keeps orders in flight."""
        return self.batch_size * self.batch_concurrency


class BenchError(RuntimeError):
    """The benchmark could not run as intended; the message says why."""


def _http(
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    warmup: float,
    duration: float,
    meter: CpuMeter | None = None,
) -> Run:
    coro = run_load(
        HOST, port, requests, concurrency=concurrency, warmup=warmup, duration=duration, meter=meter
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _expect_accepted(url: str, body: bytes, api_key: str | None) -> None:
    """One request before measuring: anything but 202 would make the numbers meaningless."""
    headers = {"Content-Type": "application/json", **({"X-API-Key": api_key} if api_key else {})}
    resp = httpx.post(url, content=body, headers=headers, timeout=30)
    if resp.status_code != 202:
        raise BenchError(f"POST {url} answered {resp.status_code}: {resp.text[:500]}")


@dataclass(frozen=True)
class _Workload:
    singles: list[bytes]  # `POST /order` bodies
    batches: list[bytes]  # `POST /orders` bodies
    records: list[tuple[bytes, bytes]]  # Kafka (key, value), as the API writes them
    description: dict[str, Any]


def _workload(settings: Settings, opts: IngestOptions, report: Report) -> _Workload:
    report(f"generating {opts.orders:,} orders with the demand model (seed {opts.seed})")
    orders = payloads.order_payloads(settings.postgres_url, opts.orders, opts.seed)
    singles = payloads.order_bodies(orders)
    batches = payloads.batch_bodies(orders, opts.batch_size)
    records = payloads.kafka_records(orders)
    description = {
        "orders_generated": len(orders),
        "distinct_batches": len(batches),
        "mean_items_per_order": sum(len(o["items"]) for o in orders) / len(orders),
        "mean_order_body_bytes": sum(map(len, singles)) / len(singles),
        "mean_batch_body_bytes": sum(map(len, batches)) / len(batches),
        "mean_record_bytes": sum(len(v) for _, v in records) / len(records),
    }
    return _Workload(singles, batches, records, description)


class _Scenarios:
    """The four measurements, sharing one stack, one workload and the same options."""

    def __init__(
        self, settings: Settings, work: _Workload, opts: IngestOptions, report: Report
    ) -> None:
        self.settings, self.work, self.opts, self.report = settings, work, opts, report
        pids = service_pids(settings)
        self.api, self.kafka = pids["api"], pids["kafka"]
        key, port = settings.api_key_list[0], settings.api_port
        self.key, self.port = key, port
        self.single_reqs = [http_request("/order", b, HOST, port, key) for b in work.singles]
        self.batch_reqs = [http_request("/orders", b, HOST, port, key) for b in work.batches]
        self.window = f"{opts.warmup:g}s warm-up + {opts.duration:g}s"

    def prime(self) -> None:
        """Unmeasured API traffic: a cold broker JVM (JIT) makes the first scenario look slow."""
        _expect_accepted(f"{self.settings.api_url}/order", self.work.singles[-1], self.key)
        _expect_accepted(f"{self.settings.api_url}/orders", self.work.batches[-1], self.key)
        if self.opts.prime <= 0:
            return
        half = self.opts.prime / 2
        self.report(f"priming the API and Kafka for {self.opts.prime:g}s (not measured)")
        _http(self.port, self.single_reqs, self.opts.concurrency, 0, half)
        _http(self.port, self.batch_reqs, self.opts.batch_concurrency, 0, half)

    def bare(self) -> Measurement:
        opts, singles = self.opts, self.work.singles
        (port,) = free_ports(1)
        self.report(f"(a) bare FastAPI endpoint, {opts.concurrency} connections, {self.window}")
        with bare_server(port, self.settings.data_path / "logs" / "bare.log") as pid:
            _expect_accepted(f"http://{HOST}:{port}/order", singles[0], None)
            reqs = [http_request("/order", b, HOST, port, None) for b in singles]
            meter = CpuMeter({"server": pid, "kafka": self.kafka, "client": None})
            run = _http(port, reqs, opts.concurrency, opts.warmup, opts.duration, meter)
        return _summary("a", "bare FastAPI", run, 1)

    def single(self) -> Measurement:
        opts = self.opts
        self.report(f"(b) POST /order, {opts.concurrency} connections, {self.window}")
        run = _http(
            self.port,
            self.single_reqs,
            opts.concurrency,
            opts.warmup,
            opts.duration,
            self._api_meter(),
        )
        return _summary("b", "/order", run, 1)

    def batched(self) -> Measurement:
        opts, size = self.opts, self.opts.batch_size
        self.report(
            f"(c) POST /orders x{size}, {opts.batch_concurrency} connections, {self.window}"
        )
        run = _http(
            self.port,
            self.batch_reqs,
            opts.batch_concurrency,
            opts.warmup,
            opts.duration,
            self._api_meter(),
        )
        return _summary("c", f"/orders x{size}", run, size)

    def direct(self) -> Measurement:
        opts = self.opts
        self.report(f"(d) bare producer, {opts.kafka_in_flight:,} records in flight, {self.window}")
        run = run_direct(
            self.settings,
            self.work.records,
            max_in_flight=opts.kafka_in_flight,
            warmup=opts.warmup,
            duration=opts.duration,
            meter=CpuMeter({"client": None, "kafka": self.kafka}),
        )
        latency_of = "record: produce() to acknowledgement"
        title = "bare producer"
        return summarize("d", title, run, ok="acked", orders_per_unit=1, latency_of=latency_of)

    def _api_meter(self) -> CpuMeter:
        return CpuMeter({"server": self.api, "kafka": self.kafka, "client": None})


def _summary(key: str, title: str, run: Run, per_request: int) -> Measurement:
    return summarize(
        key, title, run, ok="202", orders_per_unit=per_request, latency_of="HTTP request"
    )


def _stack_config(settings: Settings) -> dict[str, Any]:
    producer = {
        k: v
        for k, v in producer_config(settings, client_id="shopstream-api").items()
        if k not in ("logger", "bootstrap.servers")
    }
    return {
        "topic_partitions": settings.topic_partitions,
        "rate_limit": settings.rate_limit,
        "producer": producer,
        "uvicorn": {"workers": 1, "loop": "uvloop", "http": "httptools", "access_log": False},
    }


def run_ingest(base: Settings, opts: IngestOptions, report: Report) -> dict[str, Any]:
    """Runs the four scenarios on a fresh isolated stack; returns the results document."""
    started = datetime.now(UTC)
    machine = describe_machine()
    with isolated_stack(base, report) as settings:
        work = _workload(settings, opts, report)
        scenarios = _Scenarios(settings, work, opts, report)
        scenarios.prime()
        measured = [scenarios.bare(), scenarios.single(), scenarios.batched(), scenarios.direct()]
        config = _stack_config(settings)
    by_key = {m.key: m for m in measured}
    ratios = {
        "b_over_a": by_key["b"].orders_per_s / by_key["a"].orders_per_s,
        "c_over_d": by_key["c"].orders_per_s / by_key["d"].orders_per_s,
    }
    measured_targets = {"b_over_a": ratios["b_over_a"], "c_orders_per_s": by_key["c"].orders_per_s}
    return {
        "benchmark": "ingest",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine,
        "options": {**asdict(opts), "kafka_in_flight": opts.kafka_in_flight},
        "stack": config,
        "workload": work.description,
        "scenarios": {m.key: m.as_json() for m in measured},
        "ratios": ratios,
        "targets": {
            name: {
                "target": target,
                "measured": measured_targets[name],
                "met": measured_targets[name] >= target,
            }
            for name, target in TARGETS.items()
        },
    }
