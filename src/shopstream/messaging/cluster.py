"""What the Kafka cluster looks like right now: its brokers, its controller, and the partitions
that are short of replicas (`shopstream status`, the chaos scenarios, topic creation)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka.admin import AdminClient

__all__ = ["ClusterHealth", "cluster_health", "default_replication"]

# librdkafka logs every refused connection; with a broker down that is noise here.
_QUIET: dict[str, Any] = {"log_level": 0, "logger": logging.getLogger("librdkafka.cluster")}


@dataclass(frozen=True)
class ClusterHealth:
    brokers: dict[int, str]  # node id -> host:port, the brokers the cluster knows alive
    controller: int  # the active controller's node id (-1 when unknown)
    partitions: int
    under_replicated: tuple[str, ...]  # "topic/partition" with fewer in-sync replicas than set
    offline: tuple[str, ...]  # "topic/partition" without a leader: unavailable

    def summary(self) -> str:
        """One line for people: brokers, and what is short of replicas."""
        ids = ", ".join(str(i) for i in sorted(self.brokers))
        text = (
            f"{len(self.brokers)} broker(s) [{ids}], controller {self.controller}; "
            f"{self.partitions} partitions, {len(self.under_replicated)} under-replicated"
        )
        return text + (f", {len(self.offline)} offline" if self.offline else "")


def cluster_health(bootstrap: str, timeout: float = 5.0) -> ClusterHealth:
    """Reads the cluster's metadata once (every topic, internal ones included)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000, **_QUIET})
    meta = admin.list_topics(timeout=timeout)
    under: list[str] = []
    offline: list[str] = []
    count = 0
    for name, topic in meta.topics.items():
        for pid, part in topic.partitions.items():
            count += 1
            if part.leader < 0:
                offline.append(f"{name}/{pid}")
            if len(part.isrs) < len(part.replicas):
                under.append(f"{name}/{pid}")
    return ClusterHealth(
        brokers={b.id: f"{b.host}:{b.port}" for b in meta.brokers.values()},
        controller=meta.controller_id,
        partitions=count,
        under_replicated=tuple(sorted(under)),
        offline=tuple(sorted(offline)),
    )


def default_replication(brokers: int) -> int:
    """Replicas of a topic on a cluster of `brokers`: three where there are three or more
    (survives one broker lost with `min.insync.replicas=2`), else every broker."""
    return max(1, min(3, brokers))
