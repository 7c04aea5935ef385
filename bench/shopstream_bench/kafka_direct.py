"""Scenario (d): a bare confluent-kafka producer, configured like the API's, with no HTTP.

At most `max_in_flight` records wait for their acknowledgement at any time (the same
number of orders the `POST /orders` scenario keeps in flight), so the produce-to-ack
latency is that of a loaded producer rather than of an ever-growing local queue.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from time import perf_counter
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from shopstream.config import Settings
from shopstream.messaging.clients import producer_config
from shopstream_bench.cpu import CpuMeter
from shopstream_bench.results import Run

__all__ = ["run_direct"]

_BURST = 1000  # records produced between two polls


def run_direct(
    settings: Settings,
    records: Sequence[tuple[bytes, bytes]],
    *,
    max_in_flight: int,
    warmup: float,
    duration: float,
    meter: CpuMeter,
    max_messages: int = 100_000_000,
    flush_timeout: float = 30.0,
) -> Run:
    """Produces (key, value) `records` in a loop to the orders topic; acks in the window count."""
    if not records:
        raise ValueError("no records to produce")
    conf: dict[str, Any] = producer_config(settings, client_id="shopstream-bench")
    producer = Producer(conf)
    run = Run(duration)
    begin = perf_counter()
    start, end = begin + warmup, begin + warmup + duration
    in_flight = 0

    def delivered(err: KafkaError | None, msg: Message) -> None:
        nonlocal in_flight
        in_flight -= 1
        if err is not None:
            run.error(err.str())
            return
        if start <= perf_counter() <= end:
            run.outcomes["acked"] += 1
            latency = msg.latency()
            if latency is not None:
                run.latencies.append(latency)

    topic = settings.orders_topic
    pending = itertools.cycle(records)
    sent = 0
    metering = False
    while (now := perf_counter()) < end and sent < max_messages:
        if not metering and now >= start:
            meter.start()
            metering = True
        room = min(max_in_flight - in_flight, _BURST)
        if room <= 0:
            producer.poll(0.001)  # returns as soon as acknowledgements arrive
            continue
        for _ in range(room):
            key, value = next(pending)
            try:
                producer.produce(topic, value, key, on_delivery=delivered)
            except BufferError:
                break
            in_flight += 1
            sent += 1
        producer.poll(0)
    run.cpu_seconds = meter.stop()
    left = producer.flush(flush_timeout)
    if left:
        run.error(f"{left} record(s) still unacknowledged {flush_timeout:.0f}s after the window")
    return run
