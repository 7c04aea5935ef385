"""The dashboard's long-lived clients, one of each per Streamlit server (`st.cache_resource`).

Streamlit runs each browser session's script in a thread of its own; the clients shared here
are thread-safe (pymongo, psycopg's pool, the rollup reader's cache) or guarded by a lock (the
Kafka consumer, the API rate sampler).
"""

from __future__ import annotations

import threading
from zoneinfo import ZoneInfo

import streamlit as st
from confluent_kafka import Consumer
from psycopg_pool import ConnectionPool

from shopstream.config import Settings
from shopstream.dashboard.health_checks import ApiRates, end_offsets
from shopstream.domain.clock import Clock
from shopstream.store.ferretdb import open_store
from shopstream.store.protocols import RollupQueries, Store

__all__ = [
    "api_rates",
    "clock",
    "kafka_end_offsets",
    "postgres",
    "reader",
    "settings",
    "store",
    "tz",
]


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return Settings()


def clock() -> Clock:
    """The configuration's clock: every window the pages show is "now" by this clock."""
    return settings().clock


def tz() -> ZoneInfo:
    return clock().zone


@st.cache_resource(show_spinner=False)
def store() -> Store:
    return open_store(settings(), app="shopstream-dashboard", timeout_s=3)


@st.cache_resource(show_spinner=False)
def reader() -> RollupQueries:
    return store().rollups.reader(tz(), closed_ttl_s=settings().dashboard_cache_s)


@st.cache_resource(show_spinner=False)
def postgres() -> ConnectionPool:
    return ConnectionPool(
        settings().postgres_url,
        min_size=1,
        max_size=4,
        kwargs={"autocommit": True, "connect_timeout": 5},
        open=True,
    )


class _Offsets:
    def __init__(self, s: Settings) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": s.kafka_servers,
                "group.id": "shopstream-dashboard",  # never subscribes or commits
                "enable.auto.commit": False,
                "socket.timeout.ms": 5000,
            }
        )
        self.lock = threading.Lock()

    def __call__(self, topic: str) -> dict[str, int]:
        with self.lock:
            return end_offsets(self.consumer, topic)


@st.cache_resource(show_spinner=False)
def kafka_end_offsets() -> _Offsets:
    return _Offsets(settings())


class _Rates:
    def __init__(self, url: str) -> None:
        self.rates = ApiRates(url)
        self.lock = threading.Lock()
        self.last: tuple[dict[str, float], dict[str, float]] | None = None

    def sample(self) -> tuple[dict[str, float], dict[str, float]] | None:
        with self.lock:
            fresh = self.rates.sample()
            if fresh is not None:
                self.last = fresh
            return self.last


@st.cache_resource(show_spinner=False)
def api_rates() -> _Rates:
    return _Rates(f"{settings().api_url}/metrics")
