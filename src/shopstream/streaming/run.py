"""The streaming job's lifecycle: session, queries, ready file, signals, clean stop.

`run_job` is the one entry point: `shopstream stream` calls it, and so does the spark-submit
application (`streaming.submit`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading

from shopstream.config import Settings
from shopstream.streaming.job import progress_poller, restart_lake_query, start_job
from shopstream.streaming.session import spark_session

__all__ = ["run_job"]

log = logging.getLogger(__name__)


def run_job(settings: Settings, once: bool = False) -> None:
    """Runs both queries until they end (`once`: after what Kafka holds now) or SIGTERM/Ctrl-C.

    The ready file (which `shopstream up` waits for) names this process once the queries have
    started. A stop signal stops the queries from this thread, between py4j calls; the batch
    they interrupt is replayed at the next start. A failed query raises here.
    """
    spark = spark_session(settings)
    poller = progress_poller(settings)
    queries, guard = start_job(spark, settings, available_now=once)
    ready = settings.stream_ready_path
    ready.parent.mkdir(parents=True, exist_ok=True)
    ready.write_text(json.dumps({"pid": os.getpid(), "queries": [q.name for q in queries]}))
    log.info(
        "streaming %s: lake %s/orders, MongoDB %s.orders, checkpoints %s",
        settings.orders_topic, settings.lake, settings.mongo_database, settings.checkpoints,
    )  # fmt: skip
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    try:
        while not stopping.is_set() and any(q.isActive for q in queries):
            stopping.wait(1.0)
            for query in queries:
                if not query.isActive:
                    query.awaitTermination()  # returns at once; raises if the query failed
            poller.poll(queries)  # the lake watermark and the status documents
            restart, retention = guard.due()
            if restart and not once and queries[0].isActive:
                queries[0] = restart_lake_query(spark, settings, queries[0], retention)
    except KeyboardInterrupt:
        stopping.set()
    finally:
        signal.signal(signal.SIGTERM, previous)
    for query in queries:  # both may have ended between two looks: a failure still raises
        if not query.isActive:
            query.awaitTermination()
    poller.poll(queries)  # a run that ended by itself (`once`) publishes its last progress
    if stopping.is_set():
        for query in queries:
            query.stop()
        log.info("streaming job stopped")
