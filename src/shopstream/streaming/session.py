"""The SparkSession: one per process, configured from settings, with local connector jars."""

from __future__ import annotations

import os
import sys
from importlib import resources

from pyspark.sql import SparkSession

from shopstream.config import Settings
from shopstream.stack.install import ensure_spark_jars

__all__ = ["spark_session"]


def spark_session(settings: Settings, app: str = "shopstream-stream") -> SparkSession:
    """A session for `settings.spark_master` (a local master by default, or a cluster)."""
    # Python workers must be this interpreter; otherwise they start the system python3.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback
    jars = ensure_spark_jars(settings.cache_path)
    log4j = resources.files("shopstream.streaming").joinpath("spark-log4j2.properties")
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app)
        .config("spark.jars", ",".join(str(j) for j in jars))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
        .config("spark.sql.session.timeZone", "UTC")
        # Micro-batches of a few hundred orders: a handful of shuffle partitions, not 200.
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
