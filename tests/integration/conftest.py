"""One real stack per test session: PostgreSQL, Kafka, the MongoDB role and the API.

Everything runs on free ports in its own data directory with uuid topic names, so the
suite never touches a developer's stack and can run beside it.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shopstream.config import Settings
from shopstream.db import migrate
from shopstream.messaging import ensure_topics
from shopstream.messaging.tail import tail
from shopstream.simulator import seed
from shopstream.stack import down, up
from shopstream.stack.sandbox import sandbox_dir, sandbox_settings
from tests.utils.oidc import sign_in_settings

API_KEY = "it-key-1"
# Not the development placeholder, which the "test" environment refuses (like a real one).
AIRFLOW_PASSWORD = "it-airflow-password-7f3c"
CUSTOMERS, PRODUCTS = 300, 60


def new_base_dir() -> Path:
    return sandbox_dir("shopstream-it-")


def stack_settings(base: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "airflow_admin_password": AIRFLOW_PASSWORD,
        "api_keys": f"{API_KEY},it-key-2",
        "topic_partitions": 3,
        "rate_limit": "1000000/second",
        "stream_enabled": False,  # streaming tests drive their own queries in-process
        # Airflow starts only for its own tests (test_airflow.py); there the daily DAG runs
        # only the latest day by itself (no catchup; a day is complete once the watermark
        # passes its end), ahead of the test's triggered run.
        "airflow_enabled": False,
        "spike_start_date": "2026-01-01",
        "spike_catchup": False,
        "spike_grace_minutes": 0,
        "spike_min_orders": 0,  # the spike dataset's products sell in 4 orders a day
        "warehouse_start_date": "2025-01-01",
        "warehouse_catchup": False,  # likewise: only the latest lake day runs by itself
        "warehouse_grace_minutes": 0,
        # Outside dev the dashboard serves only behind sign-in: a real OIDC provider on loopback.
        **sign_in_settings(),
    }
    values.update(overrides)
    return sandbox_settings(base / "data", **values)


def job_settings(stack: Settings, tmp: Path, **overrides: Any) -> Settings:
    """The session stack's settings for an in-process streaming query of one test: its own
    MongoDB database, lake and checkpoints, and a short trigger."""
    values: dict[str, Any] = {
        "mongo_database": f"it_{uuid.uuid4().hex[:8]}",
        "lake_uri": (tmp / "lake").as_uri(),
        "checkpoint_uri": (tmp / "ckpt").as_uri(),
        "stream_trigger_s": 0.5,
    }
    return stack.model_copy(update={**values, **overrides})


def provision(settings: Settings) -> None:
    migrate(settings.postgres_url)
    ensure_topics(settings)


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    base = new_base_dir()
    settings = stack_settings(base)
    try:
        up(settings, provision=provision)
        seed(settings.postgres_url, CUSTOMERS, PRODUCTS, seed_value=5)
        yield settings
    finally:
        down(settings)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def api(stack: Settings) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": API_KEY}, timeout=30) as c:
        yield c


def parse_event(value: bytes | None) -> dict[str, Any]:
    """A record's JSON object, or {} for the deliberately malformed records some tests send."""
    try:
        event = orjson.loads(value or b"{}")
    except orjson.JSONDecodeError:
        return {}
    return event if isinstance(event, dict) else {}


def read_back(settings: Settings, order_ids: set[str], timeout: float = 30) -> dict[str, list[Any]]:
    """order_id -> [(key, event), ...] for every record of those orders in the topic."""
    found: dict[str, list[Any]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found.clear()
        for rec in tail(
            settings.kafka_servers, settings.orders_topic, from_beginning=True, idle_timeout=2.0
        ):
            event = parse_event(rec.value)
            if event.get("order_id") in order_ids:
                found.setdefault(event["order_id"], []).append((rec.key, event))
        if set(found) >= order_ids:
            break
    return found
