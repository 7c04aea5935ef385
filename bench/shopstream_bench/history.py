"""A history import through the streaming job: how fast do months of old orders reach the
rollups, the customers' histories and the lake?

An isolated stack runs the streaming job as `make demo` does (its default settings, or the
overrides given). Once the job has committed a first live batch, ORDERS demand-model orders
spread over the DAYS business days before today are produced to the orders topic, oldest
first (as `shopstream simulate --backfill-days` sends them, hour by hour), exactly as the API
writes them, by one bare producer. The clock starts at the first produce and stops when both
queries (enrichment and lake) have committed every record. Each enrichment micro-batch's phases
come from the job's ledger.

Then the run is checked from the sources: the all-time rollup counts the orders, every
day's rollup document counts that day's orders as generated, and the customers' histories
hold every order. (Exactness through replays is the crash test's: tests/integration.)
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from confluent_kafka import KafkaError, Message, Producer

from shopstream.config import Settings
from shopstream.domain import OrderIn
from shopstream.domain.clock import day_bounds
from shopstream.domain.documents import ROLLUP_DAY, ROLLUP_TOTAL, TOTAL_KEY
from shopstream.messaging.clients import producer_config
from shopstream.simulator import DemandModel
from shopstream.simulator.runner import load_catalog
from shopstream.store.customer_history import HISTORY_TABLE, history_schema
from shopstream.store.ferretdb import open_store
from shopstream.store.mongo import find_each
from shopstream_bench.isolated import isolated_stack
from shopstream_bench.jobstate import Checkpoint, KafkaEnds, read_ledger

__all__ = ["history_records", "run"]

Report = Callable[[str], None]
_SEED = 22


def history_records(
    settings: Settings, orders: int, days: int, now: datetime
) -> tuple[list[tuple[bytes, bytes]], Counter[str]]:
    """(key, value) records of `orders` orders over the `days` business days before `now`'s,
    oldest first; and the orders per business day."""
    tz = ZoneInfo(settings.business_timezone)
    products, customers = load_catalog(settings.postgres_url)
    model = DemandModel(products, customers, orders_per_day=orders / days * 1.05, seed=_SEED)
    today = now.astimezone(tz).date()
    hour, end = day_bounds(today - timedelta(days=days), tz)[0], day_bounds(today, tz)[0]
    generated: list[dict[str, Any]] = []
    while hour < end:
        generated += model.generate(hour, min(hour + timedelta(hours=1), end))
        hour += timedelta(hours=1)
    if len(generated) > orders:  # thinned evenly, so that the orders span every day
        keep = sorted(random.Random(_SEED).sample(range(len(generated)), orders))
        generated = [generated[i] for i in keep]
    if len(generated) < orders:
        raise RuntimeError(f"the demand model gave {len(generated)} orders, not {orders}")
    received = datetime.now(UTC)
    records: list[tuple[bytes, bytes]] = []
    per_day: Counter[str] = Counter()
    for order in generated:
        event = OrderIn.model_validate(order).to_event(received)
        records.append((event.kafka_key(), event.model_dump_json().encode()))
        per_day[event.created_at.astimezone(tz).date().isoformat()] += 1
    return records, per_day


def _produce(settings: Settings, records: list[tuple[bytes, bytes]], report: Report) -> float:
    """Produces every record (acks=all, like the API); returns the seconds it took."""
    producer = Producer(producer_config(settings, client_id="shopstream-bench-history"))
    failed: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failed.append(err.str())

    began = time.monotonic()
    for i, (key, value) in enumerate(records):
        while True:
            try:
                producer.produce(settings.orders_topic, value, key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(120) or failed:
        raise RuntimeError(f"the import was not acknowledged by Kafka: {failed[:3]}")
    seconds = time.monotonic() - began
    report(f"produced {len(records):,} records in {seconds:.1f} s")
    return seconds


def _wait(
    settings: Settings, target: int, report: Report, timeout_s: float, began: float
) -> dict[str, float]:
    """Seconds from `began` until each query has committed `target` records (polled every
    0.5 s)."""
    done: dict[str, float] = {}
    last = 0.0
    queries = {q: Checkpoint(settings, q) for q in ("enrich", "lake")}
    while len(done) < len(queries):
        now = time.monotonic() - began
        if now > timeout_s:
            raise RuntimeError(f"not done after {timeout_s:.0f} s: committed {done}")
        committed = {q: c.committed_offset() for q, c in queries.items()}
        for q, n in committed.items():
            if n >= target and q not in done:
                done[q] = round(now, 1)
        if now - last >= 15:
            shown = ", ".join(f"{q} {n:,}" for q, n in committed.items())
            report(f"  {now:5.0f} s: committed {shown} of {target:,}")
            last = now
        time.sleep(0.5)
    return done


def _started(settings: Settings, timeout_s: float) -> None:
    """Waits until both queries have started (their checkpoints name the query)."""
    queries = [Checkpoint(settings, q) for q in ("enrich", "lake")]
    deadline = time.monotonic() + timeout_s
    while not all(q.query_id() for q in queries):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the streaming job's queries did not start in {timeout_s:.0f} s")
        time.sleep(0.5)
    time.sleep(5)  # the first trigger of an empty topic


def _check(settings: Settings, per_day: Counter[str], before: dict[str, int]) -> dict[str, Any]:
    """The import's orders, counted where they should be (from outside the job)."""
    store = open_store(settings)
    db = store.db  # type: ignore[attr-defined]
    total = db[ROLLUP_TOTAL].find_one({"_id": TOTAL_KEY}) or {}
    days = sorted(per_day)
    day_docs = dict(zip(days, find_each(db[ROLLUP_DAY], days), strict=True))
    wrong_days = [d for d in days if int((day_docs[d] or {}).get("orders", 0)) != per_day[d]]
    with psycopg.connect(settings.postgres_url) as conn:
        schema = history_schema(settings.mongo_database)
        (history,) = conn.execute(f'select count(*) from "{schema}".{HISTORY_TABLE}').fetchone()  # type: ignore[misc]
    imported = sum(per_day.values())
    return {
        "rollup_total_orders": int(total.get("orders", 0)) - before["orders"],
        "expected_orders": imported,
        "days_checked": len(days),
        "days_wrong": wrong_days[:10],
        "history_rows": int(history) - before["history"],
        "ok": (
            int(total.get("orders", 0)) - before["orders"] == imported
            and not wrong_days
            and int(history) - before["history"] == imported
        ),
    }


def _counts(settings: Settings) -> dict[str, int]:
    store = open_store(settings)
    total = store.db[ROLLUP_TOTAL].find_one({"_id": TOTAL_KEY}) or {}  # type: ignore[attr-defined]
    with psycopg.connect(settings.postgres_url) as conn:
        schema = history_schema(settings.mongo_database)
        try:
            (history,) = conn.execute(f'select count(*) from "{schema}".{HISTORY_TABLE}').fetchone()  # type: ignore[misc]
        except psycopg.errors.UndefinedTable:
            history = 0
    return {
        "orders": int(total.get("orders", 0)),
        "history": int(history),
    }


def _batches(settings: Settings, after: float) -> dict[str, Any]:
    """The enrichment batches that ran during the import: sizes and phases (medians)."""
    store = open_store(settings)
    query_id = Checkpoint(settings, "enrich").query_id() or ""
    ledger = [b for b in read_ledger(store, query_id).values() if b.called_at >= after]
    full = [b for b in ledger if b.records >= 0.9 * max((x.records for x in ledger), default=0)]

    def med(values: list[float]) -> float | None:
        return round(median(values), 3) if values else None

    phases = sorted({p for b in full for p in b.sink_s})
    return {
        "batches": len(ledger),
        "records": sum(b.records for b in ledger),
        "full_batches": len(full),
        "full_batch": {
            "records": med([b.records for b in full]),
            "foreach_batch_s": med([b.duration_s for b in full]),
            "write_s": med([b.orders_written_at - b.started_at for b in full]),
            "rollups_s": med([b.finished_at - b.orders_written_at for b in full]),
            "rollup_documents": med([b.buckets for b in full]),
            "slowest_task_s": {p: med([b.sink_s.get(p, 0.0) for b in full]) for p in phases},
        },
    }


def run(
    base: Settings, orders: int, days: int, report: Report, timeout_s: float = 3600.0,
    **overrides: Any,
) -> dict[str, Any]:  # fmt: skip
    """One import on a fresh stack; the result document."""
    with isolated_stack(base, report, stream_enabled=True, **overrides) as settings:
        report(f"generating {orders:,} orders over {days} days ...")
        records, per_day = history_records(settings, orders, days, datetime.now(UTC))
        ends = KafkaEnds(settings)
        try:
            report("waiting for the job's queries to start ...")
            _started(settings, 300)
            before, start_offset = _counts(settings), ends.end_offset()
            called_after = time.time()
            began = time.monotonic()
            produce_s = _produce(settings, records, report)
            done = _wait(settings, start_offset + len(records), report, timeout_s, began)
            total_s = round(time.monotonic() - began, 1)
        finally:
            ends.close()
        check = _check(settings, per_day, before)
        result = {
            "orders": len(records),
            "days": days,
            "overrides": {k: str(v) for k, v in overrides.items()},
            "produce_s": round(produce_s, 1),
            "committed_s": done,
            "seconds": total_s,
            "orders_per_s": round(len(records) / total_s),
            "batches": _batches(settings, called_after),
            "check": check,
        }
        report(
            f"{len(records):,} orders over {days} days: {total_s:.1f} s "
            f"({result['orders_per_s']:,}/s); check {'ok' if check['ok'] else 'FAILED'}"
        )
        return result
