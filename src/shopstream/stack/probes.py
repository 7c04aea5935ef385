"""Readiness probes: each returns when its server really works and raises otherwise."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import httpx
import psycopg
from confluent_kafka.admin import AdminClient

from shopstream.config import Settings
from shopstream.messaging import kafka_roundtrip
from shopstream.messaging.cluster import cluster_health
from shopstream.store.client import connect

__all__ = [
    "PG_SUPERUSER",
    "bootstrap_postgres",
    "http_ok",
    "kafka",
    "kafka_reachable",
    "mongo",
    "pg_superuser_dsn",
    "postgres",
    "stream",
    "tcp",
]

PG_SUPERUSER = "postgres"  # the managed cluster's superuser (initdb -U)


def pg_superuser_dsn(settings: Settings) -> str:
    """The managed cluster's superuser (trust authentication on the stack's own host)."""
    return f"postgresql://{PG_SUPERUSER}@{settings.host}:{settings.postgres_port}/postgres"


def postgres(dsn: str) -> None:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        conn.execute("SELECT 1").fetchall()


def bootstrap_postgres(superuser_dsn: str, role: str, database: str) -> None:
    """Creates the application role and database in a managed cluster, once."""
    with psycopg.connect(superuser_dsn, autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchall():
            conn.execute(
                psycopg.sql.SQL("CREATE ROLE {} LOGIN").format(psycopg.sql.Identifier(role))
            )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchall():
            conn.execute(
                psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    psycopg.sql.Identifier(database), psycopg.sql.Identifier(role)
                )
            )


def kafka(bootstrap: str, brokers: int = 1) -> None:
    """A write acknowledged by every in-sync replica and read back, once `brokers` brokers
    have registered with the cluster."""
    known = len(cluster_health(bootstrap).brokers)
    if known < brokers:
        raise RuntimeError(f"{known} of {brokers} Kafka brokers registered so far")
    kafka_roundtrip(bootstrap, timeout=10.0)


def tcp(host: str, port: int) -> None:
    """Something accepts connections on host:port."""
    with socket.create_connection((host, port), timeout=2):
        pass


def kafka_reachable(bootstrap: str) -> None:
    AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=5)


def mongo(url: str) -> None:
    client = connect(url, app="shopstream-probe", timeout_s=3)
    try:
        client.admin.command("ping")
    finally:
        client.close()


def stream(ready_file: Path) -> None:
    """The streaming job wrote its ready file (queries started) and is still that process."""
    info = json.loads(ready_file.read_text())
    os.kill(int(info["pid"]), 0)


def http_ok(url: str) -> None:
    httpx.get(url, timeout=3).raise_for_status()


def http_json(url: str) -> dict[str, Any]:
    response = httpx.get(url, timeout=3)
    response.raise_for_status()
    body = response.json()
    return body if isinstance(body, dict) else {}
