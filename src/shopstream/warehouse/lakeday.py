"""One lake day as the warehouse loads it: exactly its committed files, and their counts.

The file list comes from Spark's commit log (`streaming.committed`), never a directory
listing: files of a batch that died before committing are not data. The counts (rows from
the Parquet footers, distinct order ids from the files themselves) are what a load must
reproduce in the warehouse, so they are taken from the lake, independently of the load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shopstream.config import Settings
from shopstream.streaming.committed import committed_files, filesystem_for

__all__ = ["LakeDay", "LakeError", "LakeFile", "lake_dataset", "read_lake_day"]

# The lake's columns the raw table keeps (streaming/lake.py writes them; `dt` is the path's).
RAW_COLUMNS = (
    "key", "value", "topic", "partition", "offset", "kafka_timestamp", "order_id", "created_at",
)  # fmt: skip


class LakeError(RuntimeError):
    """The lake does not hold what its commit log says."""


@dataclass(frozen=True)
class LakeFile:
    path: str  # as Spark wrote it (file:/..., s3a://...)
    rows: int  # from the Parquet footer


@dataclass(frozen=True)
class LakeDay:
    day: date
    files: tuple[LakeFile, ...]
    rows: int
    orders: int  # distinct order ids (null ids not counted)

    @property
    def size(self) -> str:
        return f"{len(self.files)} files, {self.rows:,} rows, {self.orders:,} distinct orders"


def _paths(settings: Settings, day: date) -> tuple[pafs.FileSystem, list[str], list[str]]:
    uris = committed_files(f"{settings.lake}/orders", day=day.isoformat(), settings=settings)
    fs = filesystem_for(settings.lake, settings)[0]
    return fs, uris, [filesystem_for(uri, settings)[1] for uri in uris]


def lake_dataset(settings: Settings, lake: LakeDay) -> ds.Dataset:
    """Exactly the files of `lake` (as read, whatever has been committed since) as one dataset."""
    fs = filesystem_for(settings.lake, settings)[0]
    paths = [filesystem_for(f.path, settings)[1] for f in lake.files]
    _check_present(fs, lake.day, [f.path for f in lake.files], paths)
    return ds.dataset(paths, filesystem=fs, format="parquet")


def _check_present(fs: pafs.FileSystem, day: date, uris: list[str], paths: list[str]) -> None:
    infos = fs.get_file_info(paths)
    missing = [u for u, i in zip(uris, infos, strict=True) if i.type != pafs.FileType.File]
    if missing:
        raise LakeError(
            f"the lake's commit log names {len(uris)} files of dt={day}, but {len(missing)} "
            f"of them are gone (e.g. {missing[0]}): the lake was changed outside Spark. Restore "
            "the files, or re-land the day from Kafka, before loading it"
        )


def read_lake_day(settings: Settings, day: date) -> LakeDay:
    """The committed files of `day` with their row counts and the day's distinct orders."""
    fs, uris, paths = _paths(settings, day)
    _check_present(fs, day, uris, paths)
    files = []
    for uri, path in zip(uris, paths, strict=True):
        with fs.open_input_file(path) as handle:
            files.append(LakeFile(uri, pq.ParquetFile(handle).metadata.num_rows))
    orders = 0
    if paths:
        ids = ds.dataset(paths, filesystem=fs, format="parquet").to_table(columns=["order_id"])
        with duckdb.connect() as con:
            con.register("ids", ids)
            (orders,) = con.execute("select count(distinct order_id) from ids").fetchall()[0]
    return LakeDay(day, tuple(files), sum(f.rows for f in files), int(orders))
