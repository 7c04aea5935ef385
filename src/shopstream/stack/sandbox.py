"""Throwaway stacks for tests and benchmarks: fresh ports, own data dir, uuid topic names."""

from __future__ import annotations

import contextlib
import random
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any

from shopstream.config import Settings, get_settings

__all__ = ["free_port_block", "free_ports", "sandbox_dir", "sandbox_settings"]

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (held together while chosen)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]


def free_port_block(count: int, low: int = 20000, high: int = 32000) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1 right now, below Linux's
    ephemeral range (32768-60999), so that outgoing connections do not take them meanwhile."""
    rng = random.Random()  # noqa: S311 (spreads tries; nothing secret)
    for _ in range(200):
        base = rng.randrange(low, high - count)
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind((HOST, port))
            except OSError:
                continue
            return base
    raise RuntimeError(f"no {count} consecutive free ports between {low} and {high}")


def sandbox_dir(prefix: str) -> Path:
    """A new directory under /tmp that the `postgres` account can enter (we may be root)."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)
    return base


def sandbox_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a stack of its own: every service managed, on free ports, fresh topics."""
    postgres, mongo, mongo_debug, api, dashboard, airflow = free_ports(6)
    # Kafka node i listens on kafka_port + 2i and kafka_controller_port + 2i: one block.
    kafka = free_port_block(2 * int(overrides.get("kafka_brokers", 1)))
    controller = kafka + 1
    tag = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "host": HOST,
        "kafka_bootstrap": None,
        "postgres_dsn": None,
        "mongo_uri": None,
        "kafka_port": kafka,
        "kafka_controller_port": controller,
        "postgres_port": postgres,
        "mongo_port": mongo,
        "mongo_debug_port": mongo_debug,
        "api_port": api,
        "dashboard_port": dashboard,
        "airflow_port": airflow,
        "orders_topic": f"orders-{tag}",
        "dlq_topic": f"orders-dlq-{tag}",
    }
    values.update(overrides)
    return get_settings(**values)
