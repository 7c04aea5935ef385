"""Explicit topic creation and the broker round-trip readiness probe."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from shopstream.config import Settings
from shopstream.messaging.cluster import default_replication

__all__ = [
    "READINESS_TOPIC",
    "TopicSpec",
    "ensure_topics",
    "kafka_roundtrip",
    "topic_replication",
    "topic_specs",
]

log = logging.getLogger(__name__)

READINESS_TOPIC = "_shopstream.readiness"
# librdkafka logs every refused connection; while probing a starting broker that is noise.
_QUIET: dict[str, Any] = {"log_level": 0, "logger": logging.getLogger("librdkafka.probe")}
WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    config: dict[str, str]


def topic_specs(settings: Settings, replication: int) -> list[TopicSpec]:
    """The topics shopstream owns, with `replication` replicas each. Orders are kept a week: the
    lake is the long-term copy. A write needs two in-sync replicas where there are two or more
    (acks=all then means "on two brokers"), so one broker can be lost without losing a write."""
    durable = {
        "retention.ms": str(WEEK_MS),
        "min.insync.replicas": str(min(2, replication)),
    }
    return [
        TopicSpec(settings.orders_topic, settings.topic_partitions, replication, durable),
        TopicSpec(
            settings.dlq_topic,
            settings.topic_partitions,
            replication,
            {**durable, "retention.ms": "-1"},
        ),
    ]


def topic_replication(settings: Settings, admin: AdminClient) -> int:
    """`SHOPSTREAM_TOPIC_REPLICATION`, else three replicas on a cluster of three or more
    brokers (else one per broker)."""
    if settings.topic_replication is not None:
        return settings.topic_replication
    return default_replication(len(admin.list_topics(timeout=10).brokers))


def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Creates missing topics; returns the names created. Existing topics are left alone."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    specs = (
        specs if specs is not None else topic_specs(settings, topic_replication(settings, admin))
    )
    existing = admin.list_topics(timeout=10).topics
    wanted = [
        NewTopic(s.name, s.partitions, s.replication, config=s.config)
        for s in specs
        if s.name not in existing
    ]
    created: list[str] = []
    for name, future in (admin.create_topics(wanted) if wanted else {}).items():
        try:
            future.result(timeout=30)
            created.append(name)
            log.info("created topic topic=%s", name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


def kafka_roundtrip(bootstrap: str, timeout: float = 10.0) -> None:
    """Produces one record with acks=all and reads it back; raises if either fails."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000, **_QUIET})
    meta = admin.list_topics(timeout=timeout)
    if READINESS_TOPIC not in meta.topics:
        # Replicated like the data, so the probe still answers with one broker down.
        replicas = default_replication(len(meta.brokers))
        futures = admin.create_topics([NewTopic(READINESS_TOPIC, 1, replicas)])
        try:
            futures[READINESS_TOPIC].result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    token = uuid.uuid4().bytes
    delivered: list[TopicPartition] = []
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: object) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered.append(TopicPartition(msg.topic(), msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "message.timeout.ms": int(timeout * 1000),
            **_QUIET,
        }
    )
    producer.produce(READINESS_TOPIC, token, on_delivery=on_delivery)
    if producer.flush(timeout) or not delivered:
        raise TimeoutError(f"the broker did not acknowledge the readiness record: {errors}")
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "shopstream-readiness",
            "enable.auto.commit": False,
            **_QUIET,
        }
    )
    try:
        consumer.assign(delivered)
        msg = consumer.poll(timeout)
        if msg is None or msg.error() or msg.value() != token:
            raise TimeoutError("the readiness record could not be read back")
    finally:
        consumer.close()
