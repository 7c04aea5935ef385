"""Dead letters end to end: recorded with their reason, published, listed, replayed once fixed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Producer
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from shopstream.cli.main import app
from shopstream.config import Settings, settings_env
from shopstream.messaging.tail import tail
from shopstream.store.ferretdb import open_store
from shopstream.streaming.dlq import replay
from shopstream.streaming.job import start_enrich_query
from tests.integration.conftest import job_settings
from tests.integration.test_enrich import wait_for

pytestmark = pytest.mark.integration


def test_an_unknown_product_is_dead_lettered_then_replayed_once_it_exists(
    spark: SparkSession, stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = job_settings(stack, tmp_path)
    product_id = 900_000 + uuid.uuid4().int % 99_999  # not in the catalog (yet)
    order_id = str(uuid.uuid4())
    event = {
        "schema_version": 1,
        "order_id": order_id,
        "customer_id": 7,
        "created_at": "2026-10-26T09:30:00Z",
        "received_at": "2026-10-26T09:30:00Z",
        "items": [{"product_id": product_id, "quantity": 2}],
    }
    # The API refuses unknown ids, so this record comes from another producer.
    producer = Producer({"bootstrap.servers": stack.kafka_servers})
    producer.produce(stack.orders_topic, json.dumps(event).encode(), b"7")
    assert producer.flush(10) == 0

    db = open_store(settings, app="shopstream-test")
    query = start_enrich_query(spark, settings)
    try:
        wait_for(lambda: any(order_id in d.payload for d in db.dead_letters.newest(limit=1000)))
        (letter,) = [d for d in db.dead_letters.newest(limit=1000) if order_id in d.payload]
        assert (letter.reason, letter.detail) == ("unknown_product", f"products {product_id}")
        assert json.loads(letter.payload) == event  # the raw payload, untouched

        # ... also published to the DLQ topic, keyed by the source coordinates.
        published = [
            json.loads(r.value or b"")
            for r in tail(stack.kafka_servers, stack.dlq_topic, True, idle_timeout=2.0)
            if r.key == letter.key.encode()
        ]
        assert published
        assert published[0]["reason"] == "unknown_product"

        # Not fixed yet: nothing is replayed.
        report = replay(db, stack)
        assert letter.key not in report.replayed
        assert "still unknown" in report.still_failing[letter.key]

        with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO products (id, name, category, brand, price, popularity) "
                "VALUES (%s, 'Late Lamp', 'Home', 'Acme', 12.50, 1)",
                (product_id,),
            )
        # Through the CLI, as an operator would.
        for key, value in settings_env(settings).items():
            monkeypatch.setenv(key, value)
        result = CliRunner().invoke(app, ["dlq", "replay", "--reason", "unknown_product"])
        assert result.exit_code == 0, result.output
        assert "replayed" in result.output

        wait_for(lambda: db.orders.orders([order_id])[0] is not None)
        [order] = db.orders.orders([order_id])
        assert order is not None
        assert order["items"][0]["name"] == "Late Lamp"
        assert order["order_total"] == 25.0
        (marked,) = [
            d for d in db.dead_letters.newest(include_replayed=True) if d.key == letter.key
        ]
        assert marked.replayed_at is not None
        assert marked.replayed_at <= stack.clock.now()  # a real-clock stamp (docs/time.md)
        assert (marked.replayed_to or "").startswith(stack.orders_topic + ":")

        listing = CliRunner().invoke(app, ["dlq", "list", "--all"], env={"COLUMNS": "200"})
        assert listing.exit_code == 0, listing.output
        assert "unknown_product (replayed)" in listing.output
        assert db.dead_letters.summary()[("unknown_product", True)] >= 1
        again = replay(db, stack)
        assert letter.key not in again.replayed  # replayed once
    finally:
        query.stop()
        db.drop()
        db.close()
