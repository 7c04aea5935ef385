"""Prototype (issue 22, decision 47's open question): what does a Delta Lake sink cost per
micro-batch, against the Parquet file sink the landing query uses, on this machine?

Not part of the product or the suite. Runs one streaming query per sink on `local[2]`, fed by
Spark's `rate` source shaped like the lake's rows (a ~700-byte value, Kafka-like coordinates,
partitioned by `dt`), `--batches` micro-batches each at a short trigger, and reports Spark's
own per-batch timings (`durationMs`) over the batches after the first `--warmup`, and the
size of each sink's log at the end. Needs the Delta jars (Maven Central):

    mvn dependency:copy -Dartifact=io.delta:delta-spark_4.2_2.13:4.4.0 -DoutputDirectory=JARS
    mvn dependency:copy -Dartifact=io.delta:delta-storage:4.4.0 -DoutputDirectory=JARS
    python bench/prototypes/delta_sink.py --jars JARS --out bench/prototypes/delta_sink_results.json

Measured 2026-12-08 (decision 47): the file sink 0.22 s a batch, Delta 2.64 s (the run was
stopped during Delta's 400 batches, ~20 minutes on this machine, and read from the
checkpoints with `delta_sink_checkpoints.py`; fewer `--batches` finish sooner).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

_DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def session(jars: Path) -> SparkSession:
    paths = ",".join(str(p) for p in sorted(jars.glob("*.jar")))
    return (
        SparkSession.builder.master("local[2]")
        .appName("delta-sink-prototype")
        .config("spark.jars", paths)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.streaming.numRecentProgressUpdates", "5000")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )


def rows(spark: SparkSession, per_second: int) -> Any:
    value = F.concat(F.lit('{"order_id": "'), F.col("value").cast("string"), F.lit('", '),
                     F.lit("x" * 650), F.lit('"}'))  # fmt: skip
    return (
        spark.readStream.format("rate").option("rowsPerSecond", per_second).load()
        .select(
            F.col("value").cast("string").cast("binary").alias("key"),
            value.cast("binary").alias("value"),
            F.lit("orders").alias("topic"),
            (F.col("value") % 6).cast("int").alias("partition"),
            F.col("value").alias("offset"),
            F.col("timestamp").alias("kafka_timestamp"),
            F.col("value").cast("string").alias("order_id"),
            F.col("timestamp").alias("created_at"),
            F.date_format(F.col("timestamp"), "yyyy-MM-dd").alias("dt"),
        )
        .coalesce(1)
    )  # fmt: skip


def run(spark: SparkSession, fmt: str, root: Path, batches: int, trigger_s: float,
        per_second: int) -> dict[str, Any]:  # fmt: skip
    table, checkpoint = root / fmt / "orders", root / fmt / "checkpoint"
    query = (
        rows(spark, per_second).writeStream.format(fmt)
        .option("path", str(table)).option("checkpointLocation", str(checkpoint))
        .partitionBy("dt").trigger(processingTime=f"{trigger_s} seconds").start()
    )  # fmt: skip
    began = time.monotonic()
    try:
        while True:
            progress = [p for p in query.recentProgress if p["numInputRows"] > 0]
            if len(progress) >= batches:
                break
            time.sleep(1)
    finally:
        query.stop()
    return {"format": fmt, "seconds": round(time.monotonic() - began, 1), "progress": progress,
            "log": _log_size(table, fmt)}  # fmt: skip


def _log_size(table: Path, fmt: str) -> dict[str, int]:
    log = table / ("_delta_log" if fmt == "delta" else "_spark_metadata")
    files = [p for p in log.rglob("*") if p.is_file()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def summary(result: dict[str, Any], warmup: int) -> dict[str, Any]:
    kept = result["progress"][warmup:]
    out: dict[str, Any] = {"format": result["format"], "batches": len(kept), "log": result["log"]}
    for part in ("triggerExecution", "addBatch", "walCommit", "commitOffsets"):
        values = [p["durationMs"].get(part, 0) for p in kept]
        ordered = sorted(values)
        out[part] = {
            "median_ms": statistics.median(values),
            "p95_ms": ordered[int(0.95 * (len(ordered) - 1))],
            "max_ms": ordered[-1],
        }
    out["rows_per_batch"] = statistics.median(p["numInputRows"] for p in kept)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jars", type=Path, required=True)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--trigger", type=float, default=0.5)
    parser.add_argument("--rate", type=int, default=100, help="rows per second")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="delta-proto-"))
    spark = session(args.jars)
    try:
        results = [
            summary(run(spark, fmt, root, args.batches, args.trigger, args.rate), args.warmup)
            for fmt in ("parquet", "delta", "parquet")  # the file sink again: the drift
        ]
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    doc = {"args": {k: str(v) for k, v in vars(args).items()}, "cores": os.cpu_count(),
           "results": results}  # fmt: skip
    text = json.dumps(doc, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
