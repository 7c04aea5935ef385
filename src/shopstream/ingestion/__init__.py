"""The ingestion service: `POST /order` and `POST /orders` into Kafka, durably."""

from shopstream.ingestion.app import create_app

__all__ = ["create_app"]
