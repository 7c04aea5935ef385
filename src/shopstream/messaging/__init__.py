"""Kafka plumbing shared by every component: topics, client configs, tailing."""

from shopstream.messaging.topics import ensure_topics, kafka_roundtrip, topic_specs

__all__ = ["ensure_topics", "kafka_roundtrip", "topic_specs"]
