"""`shopstream tail`: follow a topic, for people and for the demo."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

__all__ = ["TailRecord", "tail"]


@dataclass(frozen=True)
class TailRecord:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


def tail(
    bootstrap: str, topic: str, from_beginning: bool = False, idle_timeout: float | None = None
) -> Iterator[TailRecord]:
    """Records of `topic` as they arrive; stops after `idle_timeout` seconds without one."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"shopstream-tail-{uuid.uuid4()}",  # never commits: a pure observer
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        if meta.error is not None:
            raise RuntimeError(f"topic {topic!r}: {meta.error.str()}")
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in meta.partitions])
        while True:
            msg = consumer.poll(idle_timeout if idle_timeout is not None else 1.0)
            if msg is None:
                if idle_timeout is not None:
                    return
                continue
            err = msg.error()
            if err is not None:
                raise RuntimeError(err.str())
            partition, offset = msg.partition() or 0, msg.offset() or 0
            yield TailRecord(partition, offset, msg.timestamp()[1], msg.key(), msg.value())
    finally:
        consumer.close()
