"""How the streaming job learns of its queries' progress (`ProgressPoller`), to hand it to the
publishers: the query status documents (the store's `status.publish_progress`) and the lake's
watermark (`streaming.lake.WatermarkPublisher`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from py4j.protocol import Py4JError
from pyspark.sql.streaming import StreamingQuery

from shopstream.store.stream_status import Progress

__all__ = ["Progress", "ProgressPoller"]


class ProgressPoller:
    """Hands each query's newest progress, once, to the publishers (the status document, the
    lake watermark), when the driver's run loop polls it (about once a second).

    Why not a `StreamingQueryListener`: PySpark turns every event into a Python object through
    dozens of py4j calls, each a failed class lookup across Spark's jars; with a batch every
    0.5 s that cost the driver's JVM ~0.8 of this machine's 2 cores (docs/benchmarks.md).
    `lastProgress` is one call and a JSON document. A progress skipped between two polls is
    superseded by the next: publishers keep only the latest state.
    """

    def __init__(self, publishers: Sequence[Callable[[Progress], None]]) -> None:
        self.publishers = list(publishers)
        self._seen: dict[str, tuple[Any, ...]] = {}

    def poll(self, queries: Iterable[StreamingQuery]) -> int:
        """Publishes the progress of each query that made some since the last poll; returns
        how many did."""
        published = 0
        for query in queries:
            try:
                progress = query.lastProgress
            except Py4JError:  # the query or session is going away
                continue
            if not progress:
                continue
            key = (progress.get("runId"), progress.get("batchId"), progress.get("timestamp"))
            if self._seen.get(str(progress.get("name"))) == key:
                continue
            self._seen[str(progress.get("name"))] = key
            for publish in self.publishers:
                publish(progress)
            published += 1
        return published
