"""Lake landing: every Kafka record, untransformed, as Parquet partitioned by event date.

Rows keep the raw `key` and `value` bytes exactly as they were on the topic, plus the Kafka
coordinates and the few parsed columns needed to partition (`order_id`, `created_at`,
`dt`). A record whose value does not parse still lands, in `dt=unparsed` (its date cannot be
known): the lake is the complete, raw history. Spark's file sink commits each micro-batch
in `_spark_metadata`, so Spark readers see each record exactly once;
`shopstream.streaming.committed` gives non-Spark readers the same view.

"Is day D complete?" The landing query carries an event-time watermark on `created_at`
(`SHOPSTREAM_LAKE_WATERMARK_DELAY`, it drops nothing: the file sink is stateless), and after
every batch the job publishes it (within about a second) to `<lake>/orders/_watermark.json`.
Day D is complete once the watermark has passed D+1 00:00 UTC. Orders older than the
watermark can still arrive (a backfill, a replayed dead letter); they land in their day's
partition like any other, so the batch ELT loads a day's committed files once complete and
picks up files added later.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from shopstream.config import Settings
from shopstream.streaming.committed import UNPARSED_PARTITION, WATERMARK_FILE, filesystem_for
from shopstream.streaming.compaction import at_risk
from shopstream.streaming.source import read_orders

__all__ = [
    "UNPARSED_DAY",
    "RetentionGuard",
    "WatermarkPublisher",
    "complete_through",
    "lake_rows",
    "log_retention",
    "start_lake_query",
]

log = logging.getLogger(__name__)


UNPARSED_DAY = UNPARSED_PARTITION


def _event_time(value: Column) -> Column:
    # The API writes RFC 3339 UTC timestamps ("...Z"); the session timezone is UTC.
    return F.to_timestamp(F.get_json_object(value.cast("string"), "$.created_at"))


def lake_rows(kafka: DataFrame) -> DataFrame:
    """Kafka source rows -> lake rows (pure; works on batch and streaming frames)."""
    created = _event_time(F.col("value"))
    return kafka.select(
        F.col("key"),
        F.col("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.get_json_object(F.col("value").cast("string"), "$.order_id").alias("order_id"),
        created.alias("created_at"),
        F.coalesce(F.date_format(created, "yyyy-MM-dd"), F.lit(UNPARSED_DAY)).alias("dt"),
    )


_JUDGE = "judge"


def start_lake_query(
    spark: SparkSession,
    settings: Settings,
    available_now: bool = False,
    retention: str | None = _JUDGE,
) -> StreamingQuery:
    """Starts the landing query: Parquet under `settings.lake`/orders, one commit per batch;
    its log's retention as `log_retention` judges it now unless given (None: none)."""
    kafka = read_orders(spark, settings, settings.lake_max_offsets_per_trigger)
    writer = (
        lake_rows(kafka)
        .withWatermark("created_at", settings.lake_watermark_delay)
        # One task per Kafka partition would write one file each per day per batch.
        .coalesce(settings.lake_writers)
        .writeStream.format("parquet")
        .queryName("lake")
        .option("path", f"{settings.lake}/orders")
        .option("checkpointLocation", f"{settings.checkpoints}/lake")
        .partitionBy("dt")
    )
    if retention == _JUDGE:
        retention = log_retention(settings)
    if retention is not None:
        writer = writer.option("retention", retention)
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.lake_trigger_s} seconds")
    return writer.start()


def log_retention(settings: Settings, now: datetime | None = None) -> str | None:
    """The file sink's `retention` option, or None to keep every log entry (decision 49).

    Spark drops a file's entry at the first log compaction (every 10th batch) after the
    file is `SHOPSTREAM_LAKE_LOG_RETENTION_HOURS` old; from then on only a compaction
    manifest names it. So it is applied only when no file a quarter that old lacks a manifest
    (`compaction.compact_at_risk` compacts those): a lake from before the retention, or whose
    days were not compacted for days, keeps its whole log until they are (`RetentionGuard`
    judges again hourly) instead of losing days from every reader's view.
    """
    retention = settings.lake_log_retention
    if retention is None:
        return None
    if risky := at_risk(settings, now):  # on the real clock, as file times (docs/time.md)
        days = sorted(map(str, risky))
        log.warning(
            "the lake's log keeps every entry this run (SHOPSTREAM_LAKE_LOG_RETENTION_HOURS "
            "not applied): %d day(s) have files older than %s that no compaction holds "
            "(%s%s). Run `shopstream lake compact --all` (or let the lake_to_warehouse DAG "
            "catch up); the job applies the retention once they are compacted (it checks "
            "every SHOPSTREAM_LAKE_RETENTION_CHECK_S).",
            len(days), retention / 4, ", ".join(map(str, days[:5])),
            ", ..." if len(days) > 5 else "",
        )  # fmt: skip
        return None
    return f"{round(retention.total_seconds() * 1000)}ms"


class RetentionGuard:
    """Judges the log's retention again while the job runs (decision 49): every
    `SHOPSTREAM_LAKE_RETENTION_CHECK_S` (an hour), `log_retention` as at a start. When its
    answer differs from the running query's (a file is at risk: the DAG has not compacted
    for days; or nothing is any more), `due` says which retention to restart the landing
    query with: a restart replays at most the batch it interrupts, exactly once."""

    def __init__(
        self,
        settings: Settings,
        applied: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.applied, self.clock = settings, applied, clock
        self.next_check = clock() + settings.lake_retention_check_s

    def due(self, judge: Callable[[], str | None] | None = None) -> tuple[bool, str | None]:
        """(whether to restart the landing query, with which retention)."""
        if self.settings.lake_log_retention is None or self.clock() < self.next_check:
            return False, self.applied
        self.next_check = self.clock() + self.settings.lake_retention_check_s
        try:
            wanted = (judge or (lambda: log_retention(self.settings)))()
        except OSError as exc:  # the lake unreachable for a moment: judge at the next check
            log.warning("could not judge the lake log's retention (next check in %.0f s): %s",
                        self.settings.lake_retention_check_s, exc)  # fmt: skip
            return False, self.applied
        if wanted == self.applied:
            return False, self.applied
        if wanted is None:
            log.error(
                "the lake's landing query restarts without its log retention: files near "
                "the retention have no compaction manifest (is the lake_to_warehouse DAG "
                "running? `shopstream lake compact --all` compacts them)"
            )
        else:
            log.info("the lake's landing query restarts with its log retention (%s)", wanted)
        self.applied = wanted
        return True, wanted


def complete_through(watermark: datetime) -> date:
    """The last day all of whose orders are below the watermark."""
    return watermark.astimezone(UTC).date() - timedelta(days=1)


class WatermarkPublisher:
    """Writes the landing query's watermark to `<table>/_watermark.json` when its progress
    moves it (called with each new progress by `streaming.progress.ProgressPoller`)."""

    def __init__(self, table: str, settings: Settings, query_name: str = "lake") -> None:
        self.table, self.settings, self.query_name = table, settings, query_name
        self._last: str | None = None

    def __call__(self, progress: Mapping[str, Any]) -> None:
        watermark = (progress.get("eventTime") or {}).get("watermark")
        if progress.get("name") != self.query_name or not watermark or watermark == self._last:
            return
        mark = datetime.fromisoformat(watermark.replace("Z", "+00:00"))
        if mark.year < 2000:
            return  # the epoch: no event seen yet
        doc = {
            "watermark": mark.isoformat(),
            "complete_through": complete_through(mark).isoformat(),
            "max_event_time": (progress.get("eventTime") or {}).get("max"),
            "batch_id": progress.get("batchId"),
            "published_at": datetime.now(UTC).isoformat(),
        }
        try:
            fs, path = filesystem_for(f"{self.table}/{WATERMARK_FILE}", self.settings)
            with fs.open_output_stream(path) as out:
                out.write(json.dumps(doc).encode())
            self._last = watermark
        except OSError:  # the next batch publishes again; never fail the query for it
            log.warning("could not publish the lake watermark", exc_info=True)
