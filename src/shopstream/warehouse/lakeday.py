"""One lake day as the warehouse loads it: exactly its committed files, and their counts.

The file list comes from Spark's commit log and the day's compaction manifest
(`streaming.committed.lake_files`), never a directory listing: files of a batch that died
before committing are not data, and a compacted day is its compacted files plus whatever was
committed after the compaction. The counts (rows from
the Parquet footers, distinct order ids from the files' `order_id` column) are what a load
must reproduce in the warehouse, so they are taken from the lake, independently of the load.
Neither reads a whole file: the footers are a few KB each, the id column a fraction of the
data (the load's own insert is the only full read of the day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shopstream.config import Settings
from shopstream.streaming.committed import filesystem_for, lake_files

__all__ = [
    "LakeDay",
    "LakeError",
    "LakeFile",
    "ensure_present",
    "lake_dataset",
    "lake_orders",
    "local_paths",
    "read_lake_day",
]

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

    @property
    def size(self) -> str:
        return f"{len(self.files)} files, {self.rows:,} rows"


def _paths(settings: Settings, day: date) -> tuple[pafs.FileSystem, list[str], list[str]]:
    uris = lake_files(f"{settings.lake}/orders", day=day.isoformat(), settings=settings)
    fs = filesystem_for(settings.lake, settings)[0]
    return fs, uris, [filesystem_for(uri, settings)[1] for uri in uris]


def ensure_present(settings: Settings, lake: LakeDay) -> None:
    """Raises LakeError unless every file of `lake` is still in the lake."""
    fs = filesystem_for(settings.lake, settings)[0]
    paths = [filesystem_for(f.path, settings)[1] for f in lake.files]
    _check_present(fs, lake.day, [f.path for f in lake.files], paths)


def lake_dataset(settings: Settings, lake: LakeDay) -> ds.Dataset:
    """Exactly the files of `lake` (as read, whatever has been committed since) as one dataset."""
    ensure_present(settings, lake)
    fs = filesystem_for(settings.lake, settings)[0]
    paths = [filesystem_for(f.path, settings)[1] for f in lake.files]
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


def local_paths(lake: LakeDay) -> list[str] | None:
    """The day's files as local paths when the lake is a local directory (None for S3)."""
    if not all(f.path.startswith(("file:", "/")) for f in lake.files):
        return None
    return [filesystem_for(f.path)[1] for f in lake.files]


def _rows_local(paths: list[str]) -> dict[str, int]:
    """Rows per file from the Parquet footers (DuckDB reads only the footers)."""
    with duckdb.connect() as con:
        found = con.execute(
            "select file_name, num_rows from parquet_file_metadata(?)", [paths]
        ).fetchall()
    return {str(name): int(n) for name, n in found}


def _rows_arrow(fs: pafs.FileSystem, paths: list[str]) -> dict[str, int]:
    """The same through pyarrow (S3: DuckDB cannot reach it here)."""
    rows = {}
    for path in paths:
        with fs.open_input_file(path) as handle:
            rows[path] = pq.ParquetFile(handle).metadata.num_rows
    return rows


def read_lake_day(settings: Settings, day: date) -> LakeDay:
    """The committed files of `day` with their row counts (from the footers)."""
    fs, uris, paths = _paths(settings, day)
    _check_present(fs, day, uris, paths)
    if not paths:
        return LakeDay(day, (), 0)
    local = isinstance(fs, pafs.LocalFileSystem)
    rows = _rows_local(paths) if local else _rows_arrow(fs, paths)
    if unread := [uri for uri, path in zip(uris, paths, strict=True) if path not in rows]:
        raise LakeError(f"no Parquet footer read for {len(unread)} files of dt={day}: {unread[0]}")
    files = tuple(LakeFile(uri, rows[path]) for uri, path in zip(uris, paths, strict=True))
    return LakeDay(day, files, sum(f.rows for f in files))


def lake_orders(settings: Settings, lake: LakeDay) -> int:
    """Distinct order ids (nulls not counted) in exactly the files of `lake`: one column read."""
    if not lake.files:
        return 0
    query = "select count(distinct order_id) from {}"
    with duckdb.connect() as con:
        paths = local_paths(lake)
        if paths is not None:
            ensure_present(settings, lake)
            (orders,) = con.execute(query.format("read_parquet(?)"), [paths]).fetchall()[0]
        else:
            ids = lake_dataset(settings, lake).to_table(columns=["order_id"])
            con.register("ids", ids)
            (orders,) = con.execute(query.format("ids")).fetchall()[0]
    return int(orders)
