"""Compaction of complete lake days: a day's many small files rewritten as a few, published
atomically by a manifest, never by touching the file sink's own files or log (decision 47).

The streaming job's file sink writes one file per micro-batch and partition (8,640 a day at
a 10 s trigger) and names each in `_spark_metadata`, which only Spark may write. Compaction
writes a day's rows again, as files of at most ~128 MB, into
`<table>/_compacted/dt=D/<version>/`, checks them against what it read (rows, and every
record's Kafka coordinates), and then publishes `<table>/_compacted/dt=D.json` in one atomic
step (a rename on a local disk, a single PUT on S3). The manifest lists the new files and the
raw files they replace. Readers other than Spark (`committed.lake_files`: the warehouse load,
`shopstream lake files`) take, per day, the manifest's files plus the log's files of D the
manifest does not replace (orders committed after the compaction), so they see the old set
or the new one, never both or neither, whatever moment a compaction is killed at. Spark
readers of the table directory keep reading the raw files through the log; `_compacted`
starts with `_`, which Spark and pyarrow's dataset discovery skip (a glob such as DuckDB's
`orders/**/*.parquet` does not: read through `lake_files`).

A compaction of a day already compacted folds the files committed since into a new version.
A later compaction of the day deletes a superseded version once it has been superseded for
`CLEANUP_DELAY` (so a reader that listed it a moment before can still read it), and a version
no manifest ever named (a compaction killed before its publish) once it is `ORPHAN_DELAY` old
(it could still be being written). `vacuum` does the same for every day (`shopstream lake
vacuum`, and each DAG run's build): a version left by a compaction killed before its publish
is otherwise kept until the day is compacted again.

The file sink's log names a raw file for `SHOPSTREAM_LAKE_LOG_RETENTION_HOURS` after it was
written (the sink's `retention`, decision 49), so the log stays bounded; a compacted day's
manifest names its rows from then on. `vacuum` also deletes the raw files a manifest replaces
once no log names them (the retention and `CLEANUP_DELAY` after the manifest, and not in the
log as it is now), leaving a `<version>.raw-deleted` marker so a day is done once: the lake
then holds each old day once, as its compacted files.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shopstream.config import Settings
from shopstream.failpoints import failpoint
from shopstream.streaming.committed import (
    COMPACTED_DIR,
    Manifest,
    committed_files,
    filesystem_for,
    partition_key,
    read_manifest,
    unreplaced_files,
)

__all__ = [
    "CLEANUP_DELAY",
    "ORPHAN_DELAY",
    "TARGET_FILE_BYTES",
    "Compaction",
    "CompactionError",
    "Vacuum",
    "at_risk",
    "compact_at_risk",
    "compact_day",
    "vacuum",
]

log = logging.getLogger(__name__)

TARGET_FILE_BYTES = 128 * 1024 * 1024  # at most about this much per compacted file
CLEANUP_DELAY = timedelta(minutes=10)  # after a version is superseded (Spark's cleanupDelay)
ORPHAN_DELAY = timedelta(hours=6)  # a version never published: killed, or still being written
_COORDINATES = ("topic", "partition", "offset")
_VERSION_TIME = "%Y%m%dT%H%M%S"  # a version is named <its start, UTC>-<8 hex digits>


@dataclass(frozen=True)
class Compaction:
    day: date | str  # a lake day, or the `unparsed` partition
    version: str | None  # None: nothing to do
    files_in: int
    files_out: int
    rows: int
    bytes_in: int
    bytes_out: int
    seconds: float
    message: str


class CompactionError(RuntimeError):
    """What a compaction wrote is not what it read; nothing was published."""


def _path(uri: str, settings: Settings) -> str:
    return filesystem_for(uri, settings)[1]


def _uri(table: str, path: str) -> str:
    """A path on the table's filesystem as the sink names files (`file:/...`, `s3a://...`)."""
    if table.startswith("file:"):
        return f"file:{path}"
    scheme = table.split("://", 1)[0]
    return f"{scheme}://{path}"


def _coordinates(dataset: ds.Dataset) -> pa.Table:
    coords = dataset.to_table(columns=list(_COORDINATES))
    return coords.sort_by([(c, "ascending") for c in _COORDINATES])


def _write(
    fs: pafs.FileSystem, directory: str, version: str, source: ds.Dataset, rows_per_file: int
) -> list[tuple[str, int]]:
    """The source's rows as files of at most `rows_per_file` rows; (path, rows) of each."""
    fs.create_dir(directory, recursive=True)
    written: list[tuple[str, int]] = []
    writer: pq.ParquetWriter | None = None
    sink: Any = None
    in_file = 0

    def close() -> None:
        nonlocal writer, sink
        if writer is not None:
            writer.close()
            sink.close()  # the writer does not own the stream: on S3 this completes the upload
            written[-1] = (written[-1][0], in_file)
            writer, sink = None, None

    for batch in source.to_batches(batch_size=64_000):
        offset = 0
        while offset < batch.num_rows:
            if writer is None:
                path = f"{directory}/part-{version}-{len(written):05d}.zstd.parquet"
                sink = fs.open_output_stream(path)
                writer = pq.ParquetWriter(sink, source.schema, compression="zstd")
                written.append((path, 0))
                in_file = 0
            take = min(batch.num_rows - offset, rows_per_file - in_file)
            writer.write_batch(batch.slice(offset, take), row_group_size=128_000)
            offset += take
            in_file += take
            if in_file >= rows_per_file:
                close()
    close()
    return written


def _written_at(version: str) -> datetime | None:
    """When a version was started, from its name (object stores keep no directory times)."""
    try:
        return datetime.strptime(version[:15], _VERSION_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def _cleanup(
    fs: pafs.FileSystem,
    day_dir: str,
    manifest: Manifest | None,
    now: datetime,
    removed: list[str] | None = None,
) -> tuple[tuple[str, str], ...]:
    """Deletes the day's version directories no reader can still be reading: a superseded
    version once superseded longer than CLEANUP_DELAY, a version no manifest ever named (a
    compaction killed, or still running) once started longer than ORPHAN_DELAY ago; a
    directory not named like a version is left alone. The superseded versions still there
    (the deleted ones' paths go to `removed`)."""
    superseded = dict(manifest.superseded) if manifest else {}
    kept: dict[str, str] = {}
    for info in fs.get_file_info(pafs.FileSelector(day_dir, allow_not_found=True)):
        name = info.base_name
        if info.type != pafs.FileType.Directory or (manifest and name == manifest.version):
            continue
        if name in superseded:
            if now - datetime.fromisoformat(superseded[name]) < CLEANUP_DELAY:
                kept[name] = superseded[name]
                continue
        elif (started := _written_at(name)) is None or now - started < ORPHAN_DELAY:
            continue
        try:
            fs.delete_dir(info.path)
        except FileNotFoundError:
            continue  # deleted meanwhile by another cleanup
        if removed is not None:
            removed.append(info.path)
    return tuple(sorted(kept.items()))


@dataclass(frozen=True)
class Vacuum:
    versions: list[str]  # compaction version directories deleted
    raw_files: int  # raw files deleted (replaced by a manifest and out of the log)
    raw_days: list[str]  # the days they were of

    def describe(self) -> str:
        return (
            f"{len(self.versions)} unreadable compaction version(s) and {self.raw_files:,} "
            f"replaced raw file(s) of {len(self.raw_days)} day(s) deleted"
        )


_RAW_DELETED = ".raw-deleted"  # `<version>.raw-deleted`: that version's raw files are gone


def _delete_replaced(
    fs: pafs.FileSystem,
    settings: Settings,
    day_dir: str,
    manifest: Manifest,
    logged: frozenset[str],
    now: datetime,
    retention: timedelta,
) -> int | None:
    """Deletes the raw files `manifest` replaces once no reader can reach them: the log
    drops a file at its first compaction after the file is `retention` old, and every file
    the manifest replaces was written before the manifest; `CLEANUP_DELAY` more for a reader
    that listed the log just before. None: not yet (too young, or the log still names some:
    the streaming job has not compacted its log since)."""
    marker = f"{day_dir}/{manifest.version}{_RAW_DELETED}"
    if now - datetime.fromisoformat(manifest.created_at) < retention + CLEANUP_DELAY:
        return None
    if fs.get_file_info(marker).type == pafs.FileType.File or manifest.replaces & logged:
        return None
    paths = sorted(manifest.replaces)

    def delete(path: str) -> int:
        try:
            fs.delete_file(_path(path, settings))
        except FileNotFoundError:
            return 0  # deleted by an earlier vacuum of an earlier version of the day
        return 1

    # one request per file on an object store: a few at a time
    with ThreadPoolExecutor(max_workers=1 if isinstance(fs, pafs.LocalFileSystem) else 16) as pool:
        deleted = sum(pool.map(delete, paths))
    with fs.open_output_stream(marker) as out:
        out.write(json.dumps({"deleted": deleted, "at": now.isoformat()}).encode())
    return deleted


def _settled(fs: pafs.FileSystem, day_dir: str) -> bool:
    """Whether a day has nothing left to vacuum, from a listing alone: one version, and its
    raw files deleted (so a year of old days costs a listing each, not a manifest each)."""
    listed = fs.get_file_info(pafs.FileSelector(day_dir, allow_not_found=True))
    versions = [i.base_name for i in listed if i.type == pafs.FileType.Directory]
    files = {i.base_name for i in listed if i.type == pafs.FileType.File}
    return len(versions) == 1 and f"{versions[0]}{_RAW_DELETED}" in files


def vacuum(settings: Settings, now: datetime | None = None) -> Vacuum:
    """Deletes, for every compacted day, the versions no reader can still be reading (as a
    compaction of that day would: a version left by a compaction killed before its publish,
    a superseded one) and, with a log retention, the raw files its manifest replaces once no
    log names them (see the module). Cheap: one listing of `_compacted` and of each day's
    folder, each day's manifest, and the (bounded) log once."""
    # The real clock, like the version names and supersession times it compares with (a
    # shifted SHOPSTREAM_CLOCK_* must not delete a version being written; docs/time.md).
    now = now or datetime.now(UTC)
    table = f"{settings.lake}/orders"
    fs, root = filesystem_for(table, settings)
    retention = settings.lake_log_retention
    logged: frozenset[str] | None = None
    removed: list[str] = []
    raw_files, raw_days = 0, []
    base = f"{root.rstrip('/')}/{COMPACTED_DIR}"
    for info in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
        if info.type != pafs.FileType.Directory or not info.base_name.startswith("dt="):
            continue
        day = info.base_name.removeprefix("dt=")
        if partition_key(day) is None:
            continue  # not a partition's folder: not ours to judge
        if _settled(fs, info.path):
            continue
        manifest = read_manifest(table, day, settings)
        _cleanup(fs, info.path, manifest, now, removed)
        if manifest is None or retention is None:
            continue
        if logged is None:
            logged = frozenset(committed_files(table, settings=settings))
        deleted = _delete_replaced(fs, settings, info.path, manifest, logged, now, retention)
        if deleted is not None:
            raw_files += deleted
            raw_days.append(day)
    result = Vacuum(removed, raw_files, raw_days)
    if removed or raw_days:
        log.info("lake vacuum: %s", result.describe())
    return result


def _publish(fs: pafs.FileSystem, path: str, doc: dict[str, Any]) -> None:
    """The manifest in one atomic step: a rename locally, one PUT on object stores."""
    body = (json.dumps(doc, indent=1) + "\n").encode()
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with fs.open_output_stream(tmp) as out:
            out.write(body)
        fs.move(tmp, path)
    else:
        with fs.open_output_stream(path) as out:
            out.write(body)


def compact_day(
    settings: Settings,
    day: date | str,
    target_bytes: int = TARGET_FILE_BYTES,
    now: datetime | None = None,
) -> Compaction:
    """Rewrites `day`'s current files (see the module) as files of at most ~`target_bytes`,
    checked, then published. The caller checks the day is complete."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    table = f"{settings.lake}/orders"
    fs, root = filesystem_for(table, settings)
    root = root.rstrip("/")
    day_dir = f"{root}/{COMPACTED_DIR}/dt={day}"
    # the manifest, then the log, each read once: a file committed meanwhile is either in
    # `raw` (compacted and replaced) or not (read beside the new version until the next)
    current = read_manifest(table, day, settings)
    raw = committed_files(table, str(day), settings)
    fresh = [p for p in raw if current is None or p not in current.replaces]
    inputs = sorted([path for path, _ in current.files] if current else []) + fresh
    if not fresh or not inputs:
        _cleanup(fs, day_dir, current, now)
        why = "already compacted, nothing committed since" if current else "no files"
        return Compaction(day, None, len(inputs), len(inputs), 0, 0, 0, 0.0, f"{day}: {why}")

    paths = [_path(p, settings) for p in inputs]
    infos = fs.get_file_info(paths)
    if missing := [p for p, i in zip(inputs, infos, strict=True) if i.type != pafs.FileType.File]:
        raise CompactionError(f"{len(missing)} files of dt={day} are gone (e.g. {missing[0]})")
    bytes_in = sum(i.size or 0 for i in infos)
    source = ds.dataset(paths, filesystem=fs, format="parquet")
    rows = source.count_rows()
    files_out = max(1, -(-bytes_in // target_bytes))
    rows_per_file = max(1, -(-rows // files_out))

    version = f"{now.astimezone(UTC):{_VERSION_TIME}}-{uuid.uuid4().hex[:8]}"
    written = _write(fs, f"{day_dir}/{version}", version, source, rows_per_file)
    out = ds.dataset([p for p, _ in written], filesystem=fs, format="parquet")
    footer_rows = sum(pq.ParquetFile(fs.open_input_file(p)).metadata.num_rows for p, _ in written)
    if footer_rows != rows or sum(n for _, n in written) != rows:
        raise CompactionError(f"dt={day}: wrote {footer_rows:,} rows, read {rows:,}")
    before, after = _coordinates(source), _coordinates(out)
    if not all(pc.all(pc.equal(before[c], after[c])).as_py() for c in _COORDINATES):
        raise CompactionError(f"dt={day}: the compacted records differ from the raw ones")
    if before.group_by(list(_COORDINATES)).aggregate([]).num_rows != rows:
        raise CompactionError(f"dt={day}: a Kafka record is in the day's files twice")
    bytes_out = sum(i.size or 0 for i in fs.get_file_info([p for p, _ in written]))

    failpoint("lake.compact.before_publish")
    superseded = _cleanup(fs, day_dir, current, now)
    if current is not None:
        superseded += ((current.version, now.isoformat()),)
    doc = Manifest(
        day=str(day),
        version=version,
        files=tuple((_uri(table, p), n) for p, n in written),
        replaces=frozenset(raw) | (current.replaces if current else frozenset()),
        rows=rows,
        created_at=now.isoformat(),
        superseded=superseded,
    ).to_json()
    _publish(fs, f"{root}/{COMPACTED_DIR}/dt={day}.json", doc)
    seconds = round(time.monotonic() - started, 3)
    log.info("compacted dt=%s: %d files -> %d (%d rows)", day, len(inputs), len(written), rows)
    return Compaction(
        day, version, len(inputs), len(written), rows, bytes_in, bytes_out, seconds,
        f"{day}: {len(inputs):,} files ({bytes_in / 1e6:,.1f} MB) -> {len(written)} "
        f"({bytes_out / 1e6:,.1f} MB), {rows:,} rows, in {seconds:.1f} s",
    )  # fmt: skip


def at_risk(settings: Settings, now: datetime | None = None) -> list[date | str]:
    """The partitions (days, `unparsed`) holding a committed file older than a quarter of
    the log's retention that no manifest holds: compact them before the log drops such a
    file (decision 49). A `dt=` folder the landing query cannot have written is left out.
    Nothing without a retention."""
    retention = settings.lake_log_retention
    if retention is None:
        return []
    now = now or datetime.now(UTC)  # file times are the real clock's
    table = f"{settings.lake}/orders"
    parts = [partition_key(p) for p in unreplaced_files(table, settings, now - retention / 4)]
    return [part for part in parts if part is not None]


def compact_at_risk(
    settings: Settings, now: datetime | None = None
) -> tuple[list[Compaction], list[str]]:
    """Compacts every partition `at_risk` names: days the runs' plans do not reach (before
    the DAG's start date, `unparsed`) and late files of days loaded long ago. Each on its
    own: one that fails (named in the second list) does not hold back the others."""
    done: list[Compaction] = []
    failed: list[str] = []
    for part in at_risk(settings, now):
        try:
            done.append(compact_day(settings, part))
        except (OSError, CompactionError) as exc:
            log.error("compaction of dt=%s failed: %s", part, exc)
            failed.append(f"dt={part}: {exc}")
    return done, failed
