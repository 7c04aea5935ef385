"""The SparkSession: one per process, configured from settings, with local connector jars."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from pyspark.sql import SparkSession

from shopstream.config import Settings
from shopstream.tools.install import ensure_s3a_jars, ensure_spark_jars

__all__ = ["job_jars", "local_fs_conf", "s3a_conf", "spark_session", "submitted", "uses_s3a"]

_SIMPLE_CREDENTIALS = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
# The SDK's full chain (env, system properties, web identity, ~/.aws profile, container and
# instance roles); S3A's own default list leaves out the profile.
_DEFAULT_CREDENTIALS = "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"


def job_jars(settings: Settings) -> list[Path]:
    """The jars the job needs beyond pyspark's, fetched once (for `spark.jars` or `--jars`)."""
    jars = ensure_spark_jars(settings.cache_path)
    if uses_s3a(settings):  # the s3a jars are fetched only for an S3 lake or checkpoints
        jars += ensure_s3a_jars(settings.cache_path)
    return jars


def submitted() -> bool:
    """Whether this process is a driver started by `spark-submit` (its JVM is already up)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_session(settings: Settings, app: str = "shopstream-stream") -> SparkSession:
    """A session for `settings.spark_master` (a local master by default, or a cluster).

    Under `spark-submit` the master, jars and driver JVM options are spark-submit's
    (`--master`, `--jars "$(shopstream stream --print-jars)"`); only the job's own settings
    are applied.
    """
    builder = SparkSession.builder.appName(app)
    if not submitted():
        # Python workers must be this interpreter; otherwise they start the system python3.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        if settings.spark_master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback
        log4j = resources.files("shopstream.streaming").joinpath("spark-log4j2.properties")
        builder = (
            builder.master(settings.spark_master)
            .config("spark.jars", ",".join(str(j) for j in job_jars(settings)))
            .config("spark.driver.memory", settings.spark_driver_memory)
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
        )
    pools = resources.files("shopstream.streaming").joinpath("fairscheduler.xml")
    builder = (
        builder.config("spark.sql.session.timeZone", "UTC")
        # The queries are stateless and the enrichment shuffles nothing; the lake coalesces.
        # (A streaming checkpoint records this value and restores it on restart.)
        .config("spark.sql.shuffle.partitions", "4")
        # The lake's batches must not hold up the enrichment's (streaming.job pools).
        .config("spark.scheduler.mode", "FAIR")
        .config("spark.scheduler.allocation.file", f"file:{pools}")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
    )
    conf = {**local_fs_conf(settings), **(s3a_conf(settings) if uses_s3a(settings) else {})}
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def uses_s3a(settings: Settings) -> bool:
    """Whether the lake or the checkpoints are on S3 (then Spark needs the s3a jars)."""
    return settings.lake.startswith("s3a://") or settings.checkpoints.startswith("s3a://")


_FILE_SYSTEM_CHECKPOINTS = (
    "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager"
)


def local_fs_conf(settings: Settings) -> dict[str, str]:
    """Local checkpoints with fewer processes and files (pure; issue 18, decision 40).

    Without Hadoop's native library (no Maven artifact ships it), its local file system sets
    each new file's mode by running `chmod`, and Spark's default checkpoint manager
    (FileContext) writes a `.crc` beside every file and runs `readlink` on every rename: ~19
    processes a micro-batch, ~38 a second at the 0.5 s trigger (JFR). The FileSystem manager
    on the raw local file system writes no `.crc` and renames with rename(2), still atomic, so
    a log entry appears whole or not at all (neither manager ever fsynced): one `chmod` per
    file remains, 2 processes a micro-batch. A local lake's Parquet files and file-sink log
    are written the same way (no `.crc`; every reader of them ignores those anyway).
    """
    if not settings.checkpoints.startswith("file:"):
        return {}
    return {
        "spark.sql.streaming.checkpointFileManagerClass": _FILE_SYSTEM_CHECKPOINTS,
        "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    }


def s3a_conf(settings: Settings) -> dict[str, str]:
    """The `spark.hadoop.fs.s3a.*` confs for the S3 settings (pure; verified against moto)."""
    key, secret = settings.s3_access_key_id, settings.s3_secret_access_key
    if (key is None) != (secret is None):
        raise ValueError(
            "set both SHOPSTREAM_S3_ACCESS_KEY_ID and SHOPSTREAM_S3_SECRET_ACCESS_KEY, or neither"
        )
    conf = {"path.style.access": str(settings.s3_path_style).lower()}
    if settings.s3_endpoint:
        conf["endpoint"] = settings.s3_endpoint
        if settings.s3_endpoint.startswith("http://"):
            conf["connection.ssl.enabled"] = "false"
    if settings.s3_region:
        conf["endpoint.region"] = settings.s3_region
    if key is not None and secret is not None:
        conf["aws.credentials.provider"] = _SIMPLE_CREDENTIALS
        conf["access.key"] = key
        conf["secret.key"] = secret.get_secret_value()
    else:
        conf["aws.credentials.provider"] = _DEFAULT_CREDENTIALS
    return {f"spark.hadoop.fs.s3a.{name}": value for name, value in conf.items()}
