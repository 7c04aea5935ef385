"""A three-broker Kafka under the API's load: one broker killed (-9) keeps 202s flowing, two
killed make the API answer 503 within its bound (no 202 without the in-sync quorum), and the
cluster heals by itself. Every acknowledged order is in the topic exactly once.

The stack: three managed KRaft nodes and an API of its own, on the session's PostgreSQL and
MongoDB. `make chaos` runs the longer versions with the streaming job and a reconciliation of
MongoDB and the lake (docs/reliability.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from shopstream.config import Settings, settings_env
from shopstream.messaging.cluster import cluster_health
from shopstream.stack import down, up
from shopstream.stack.supervisor import Supervisor
from tests.integration.conftest import API_KEY, new_base_dir, provision, read_back, stack_settings
from tests.utils import wait_until
from tests.utils.clients import OrderClient

pytestmark = pytest.mark.integration


def answers_between(
    clients: list[OrderClient], start: float, end: float
) -> list[tuple[int, float]]:
    return [(st, secs) for c in clients for sent, st, secs, _ in c.answers if start <= sent < end]


def leader_of_most_partitions(settings: Settings) -> int:
    meta = AdminClient({"bootstrap.servers": settings.kafka_servers}).list_topics(timeout=10)
    leaders = Counter(p.leader for p in meta.topics[settings.orders_topic].partitions.values())
    return leaders.most_common(1)[0][0]


@pytest.fixture
def cluster(stack: Settings) -> Iterator[Settings]:
    base = new_base_dir()
    settings = stack_settings(
        base,
        kafka_brokers=3,
        topic_partitions=6,
        postgres_dsn=stack.postgres_url,
        mongo_uri=stack.mongo_url,
        dashboard_enabled=False,
    )
    try:
        up(settings, provision=provision)
        yield settings
    finally:
        down(settings)
        shutil.rmtree(base, ignore_errors=True)


def test_a_three_broker_cluster_loses_one_broker_then_two_and_keeps_every_acknowledged_order(
    cluster: Settings,
) -> None:
    health = cluster_health(cluster.kafka_servers)
    assert sorted(health.brokers) == [1, 2, 3]
    assert health.under_replicated == ()
    meta = AdminClient({"bootstrap.servers": cluster.kafka_servers}).list_topics(timeout=10)
    assert all(len(p.replicas) == 3 for p in meta.topics[cluster.orders_topic].partitions.values())
    shown = subprocess.run(
        [sys.executable, "-m", "shopstream", "status"],
        env={**os.environ, **settings_env(cluster), "COLUMNS": "200"},  # one line each
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "3 broker(s) [1, 2, 3]" in shown.stdout
    assert "0 under-replicated" in shown.stdout
    assert all(f"Kafka node {n}" in shown.stdout for n in (1, 2, 3))

    sup = Supervisor(cluster.data_path)
    clients = [OrderClient(cluster.api_url, API_KEY) for _ in range(8)]
    for c in clients:
        c.start()
    try:
        time.sleep(2)
        # One broker lost: the partitions it led move; the API keeps answering 202.
        first = leader_of_most_partitions(cluster)
        killed_at = time.monotonic()
        sup.kill_program(f"kafka-{first}")
        time.sleep(10)
        one_down = answers_between(clients, killed_at, time.monotonic())
        statuses = Counter(st for st, _ in one_down)
        assert statuses[202] > 50
        # Fail-over takes ~2-3 s, inside the API's 4.5 s; on a loaded 2-core runner it once
        # took longer for 1 request in 1,209 (a 503 the client retries, never a loss). The
        # strict "only 202" is `make chaos`'s broker-leader scenario (docs/reliability.md).
        assert set(statuses) <= {202, 503}, statuses
        assert statuses[503] <= max(3, statuses[202] // 100), statuses
        assert max(secs for _, secs in one_down) <= cluster.produce_timeout_s
        health = cluster_health(cluster.kafka_servers)
        assert first not in health.brokers
        assert health.under_replicated  # two replicas of three in sync

        # Two lost: no write reaches two in-sync replicas; 503 within the API's bound.
        second = next(b for b in (1, 2, 3) if b != first)
        sup.kill_program(f"kafka-{second}")
        both_at = time.monotonic()
        time.sleep(12)
        # sent from a second after the kill: answered by now (within 5 s), none of them a 202
        two_down = answers_between(clients, both_at + 1, time.monotonic() - 6)
        assert two_down, "no answer while two brokers were down"
        assert all(st == 503 for st, _ in two_down), Counter(st for st, _ in two_down)
        slowest = max(secs for _, secs in answers_between(clients, both_at, time.monotonic()))
        assert slowest <= cluster.produce_timeout_s, slowest

        # Back: the API recovers by itself and the replicas catch up.
        back_at = time.monotonic()
        sup.start_program(f"kafka-{first}")
        sup.start_program(f"kafka-{second}")

        def recovered() -> bool:
            later = answers_between(clients, back_at + 1, time.monotonic())
            return any(st == 202 for st, _ in later)

        wait_until(recovered, "the API to answer 202 again", timeout=90)
        time.sleep(2)
    finally:
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(timeout=60)
    in_sync = lambda: not cluster_health(cluster.kafka_servers).under_replicated  # noqa: E731
    wait_until(in_sync, "every replica back in sync", timeout=120)

    accepted = {oid for c in clients for _, st, _, oid in c.answers if st == 202}
    found = read_back(cluster, accepted, timeout=60)
    assert set(found) == accepted, f"{len(accepted - set(found))} acknowledged orders lost"
    doubled = [oid for oid, records in found.items() if len(records) > 1]
    assert not doubled, f"{len(doubled)} orders doubled in the topic"
