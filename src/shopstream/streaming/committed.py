"""The committed files of the lake, read from Spark's file-sink log without Spark.

Spark's file sink writes Parquet files first and then commits the batch by writing
`_spark_metadata/<batch>`: a `v1` line, then one JSON `SinkFileStatus` per file
(`{"path": ..., "action": "add", ...}`). Every `spark.sql.streaming.fileSink.log.compactInterval`
batches (10 by default) it writes `<batch>.compact` instead, holding all entries so far.
Files in the table directory that no committed entry names are leftovers of a batch that
died before its commit; they will be rewritten by the retried batch and must be ignored.
The batch ELT uses this to load exactly the committed files of a day.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs

from shopstream.config import Settings

__all__ = [
    "COMPACTED_DIR",
    "UNPARSED_PARTITION",
    "WATERMARK_FILE",
    "Manifest",
    "committed_files",
    "compacted_days",
    "filesystem_for",
    "lake_days",
    "lake_files",
    "manifest_times",
    "partition_key",
    "read_manifest",
    "read_manifests",
    "read_watermark",
    "s3_filesystem",
    "unreplaced_files",
    "watermark_passed",
]

# Published by the landing query (streaming/lake.py) in the table directory; `_` files are
# not data to Spark or pyarrow.
WATERMARK_FILE = "_watermark.json"

_LOG_NAME = re.compile(r"^(\d+)(\.compact)?$")


def filesystem_for(uri: str, settings: Settings | None = None) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and path for a `file://`, plain or `s3a://`/`s3://` URI.

    With `settings`, S3 is reached as they say (endpoint, keys, region, addressing), as
    Spark does; without, through pyarrow's defaults (AWS, the default credential chain).
    """
    if uri.startswith("file:"):  # file:///x, and Hadoop's file:/x
        return pafs.LocalFileSystem(), unquote(urlparse(uri).path)
    if "://" not in uri:
        return pafs.LocalFileSystem(), uri
    uri = uri.replace("s3a://", "s3://", 1)
    if settings is not None and uri.startswith("s3://"):
        bucket_and_key = uri.removeprefix("s3://")
        return s3_filesystem(settings, bucket_and_key.split("/", 1)[0]), bucket_and_key
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path


def s3_filesystem(settings: Settings, bucket: str | None = None) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem configured from the S3 settings.

    On AWS with no region set, the region is looked up from `bucket` (as `from_uri` does).
    """
    options: dict[str, object] = {"force_virtual_addressing": not settings.s3_path_style}
    if settings.s3_endpoint:
        parsed = urlparse(settings.s3_endpoint)
        if parsed.scheme:
            options["scheme"] = parsed.scheme
            options["endpoint_override"] = parsed.netloc
        else:
            options["endpoint_override"] = settings.s3_endpoint
    if settings.s3_region:
        options["region"] = settings.s3_region
    elif bucket and not settings.s3_endpoint:
        options["region"] = pafs.resolve_s3_region(bucket)
    if settings.s3_access_key_id is not None and settings.s3_secret_access_key is not None:
        options["access_key"] = settings.s3_access_key_id
        options["secret_key"] = settings.s3_secret_access_key.get_secret_value()
    return pafs.S3FileSystem(**options)


def _log_entries(fs: pafs.FileSystem, log_dir: str) -> Iterable[dict[str, object]]:
    infos = fs.get_file_info(pafs.FileSelector(log_dir, allow_not_found=True))
    batches: dict[int, str] = {}
    last_compact = -1
    for info in infos:
        match = _LOG_NAME.match(info.base_name)
        if match is None:
            continue  # temporary files of an in-progress commit
        batches[int(match.group(1))] = info.path
        if match.group(2):
            last_compact = max(last_compact, int(match.group(1)))
    for batch in sorted(b for b in batches if b >= last_compact):
        with fs.open_input_stream(batches[batch]) as stream:
            lines = stream.read().decode().splitlines()
        if not lines or lines[0] != "v1":
            raise ValueError(f"unexpected file-sink log format in {batches[batch]}")
        yield from (json.loads(line) for line in lines[1:] if line)


def committed_files(
    table_uri: str, day: str | None = None, settings: Settings | None = None
) -> list[str]:
    """Paths of the committed Parquet files of a file-sink table (one `dt=` day or all).

    Paths are as Spark wrote them (`file:/...`, `s3a://...`); open them with
    `filesystem_for(path, settings)`. `settings` are needed for S3 other than plain AWS.
    """
    files = _logged(table_uri, settings)
    wanted = f"/dt={day}/" if day else None
    return sorted(p for p in files if wanted is None or wanted in p)


def _logged(table_uri: str, settings: Settings | None) -> dict[str, int]:
    """Every committed file the log names -> when it was written (ms since the epoch; 0
    when the entry does not say)."""
    fs, root = filesystem_for(table_uri, settings)
    files: dict[str, int] = {}
    for entry in _log_entries(fs, f"{root.rstrip('/')}/_spark_metadata"):
        path = str(entry["path"])
        if entry.get("action", "add") == "add":
            files[path] = int(str(entry.get("modificationTime", 0)))
        else:
            files.pop(path, None)
    return files


_DAY_DIR = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/")
_PARTITION_DIR = re.compile(r"/dt=([^/]+)/")
# Records whose value does not parse land in `dt=unparsed` (streaming/lake.py)
UNPARSED_PARTITION = "unparsed"


def partition_key(name: str) -> date | str | None:
    """A `dt=` partition's name as compaction takes it: a day, `unparsed`, or None (not
    a partition the landing query writes)."""
    if name == UNPARSED_PARTITION:
        return name
    if not _DAY_NAME.fullmatch(name):
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def unreplaced_files(
    table_uri: str, settings: Settings | None = None, written_before: datetime | None = None
) -> dict[str, list[str]]:
    """By partition (a day, or `unparsed`), the committed files no compaction manifest
    replaces (never compacted: all its files; compacted: those committed since), only files
    written before `written_before` if given. One read of the log, one manifest per
    partition it names."""
    files = _logged(table_uri, settings)
    before = written_before.timestamp() * 1000 if written_before is not None else None
    by_day: dict[str, list[str]] = {}
    for path, written in files.items():
        if (m := _PARTITION_DIR.search(path)) and (before is None or written < before):
            by_day.setdefault(m.group(1), []).append(path)
    found: dict[str, list[str]] = {}
    for day, paths in sorted(by_day.items()):
        manifest = read_manifest(table_uri, day, settings)
        if fresh := sorted(p for p in paths if manifest is None or p not in manifest.replaces):
            found[day] = fresh
    return found


def lake_days(settings: Settings) -> list[date]:
    """The days (`dt=` partitions) the orders table has files for, oldest first."""
    table = f"{settings.lake}/orders"
    raw = committed_files(table, settings=settings)
    found = {m.group(1) for path in raw if (m := _DAY_DIR.search(path))}
    found |= {d for d in compacted_days(table, settings) if _DAY_NAME.fullmatch(d)}
    return [date.fromisoformat(d) for d in sorted(found)]


# Compacted days (streaming/compaction.py): `<table>/_compacted/dt=D.json` names the files
# that replace the raw files it lists.
COMPACTED_DIR = "_compacted"
_DAY_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")
_MANIFEST_NAME = re.compile(r"^dt=(.+)\.json$")


@dataclass(frozen=True)
class Manifest:
    day: str
    version: str
    files: tuple[tuple[str, int], ...]  # (path as the sink names paths, rows)
    replaces: frozenset[str]  # the raw files (as the log names them) these hold
    rows: int
    created_at: str
    # earlier versions (directory, when this or an earlier manifest superseded it): deleted
    # by a later compaction once superseded longer than its cleanup delay
    superseded: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day, "version": self.version, "rows": self.rows,
            "created_at": self.created_at,
            "files": [{"path": p, "rows": n} for p, n in self.files],
            "replaces": sorted(self.replaces),
            "superseded": [{"version": v, "at": at} for v, at in self.superseded],
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Manifest:
        return cls(
            day=str(doc["day"]), version=str(doc["version"]),
            files=tuple((str(f["path"]), int(f["rows"])) for f in doc["files"]),
            replaces=frozenset(str(p) for p in doc["replaces"]), rows=int(doc["rows"]),
            created_at=str(doc["created_at"]),
            superseded=tuple((str(x["version"]), str(x["at"])) for x in doc.get("superseded", [])),
        )  # fmt: skip


def read_manifest(
    table_uri: str, day: date | str, settings: Settings | None = None
) -> Manifest | None:
    """The day's compaction manifest, or None when the day was never compacted."""
    fs, root = filesystem_for(table_uri, settings)
    try:
        with fs.open_input_stream(f"{root.rstrip('/')}/{COMPACTED_DIR}/dt={day}.json") as stream:
            return Manifest.from_json(json.loads(stream.read()))
    except FileNotFoundError:
        return None


def compacted_days(table_uri: str, settings: Settings | None = None) -> list[str]:
    """The days that have a manifest (a listing; no manifest is read)."""
    fs, root = filesystem_for(table_uri, settings)
    selector = pafs.FileSelector(f"{root.rstrip('/')}/{COMPACTED_DIR}", allow_not_found=True)
    return sorted(
        m.group(1)
        for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.File and (m := _MANIFEST_NAME.match(info.base_name))
    )


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def manifest_times(table_uri: str, settings: Settings | None = None) -> dict[str, datetime]:
    """When each partition's manifest was last published (a listing; no manifest is read)."""
    fs, root = filesystem_for(table_uri, settings)
    selector = pafs.FileSelector(f"{root.rstrip('/')}/{COMPACTED_DIR}", allow_not_found=True)
    return {
        m.group(1): info.mtime.astimezone(UTC)
        if info.mtime.tzinfo
        else info.mtime.replace(tzinfo=UTC)
        for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.File
        and info.mtime is not None
        and (m := _MANIFEST_NAME.match(info.base_name))
    }


def read_manifests(table_uri: str, settings: Settings | None = None) -> dict[str, Manifest]:
    """Every compacted day's manifest, by day (a day's manifest lists the raw files it
    replaces: ~1 MB for a day of 8,640 files; read one day's where one day is wanted)."""
    return {
        day: found
        for day in compacted_days(table_uri, settings)
        if (found := read_manifest(table_uri, day, settings)) is not None
    }


def lake_files(
    table_uri: str, day: str | None = None, settings: Settings | None = None
) -> list[str]:
    """What a reader other than Spark reads of the table (one `dt=` day or all): per day, the
    compacted files of its manifest, and the committed files the manifest does not replace
    (committed after the compaction); a day never compacted: its committed files."""
    raw = committed_files(table_uri, day, settings)
    if day is not None:
        found = read_manifest(table_uri, day, settings)
        manifests = {day: found} if found is not None else {}
    else:
        manifests = read_manifests(table_uri, settings)
    replaced: set[str] = set()
    compacted: list[str] = []
    for manifest in manifests.values():
        replaced |= manifest.replaces
        compacted += [path for path, _ in manifest.files]
    return sorted([p for p in raw if p not in replaced] + compacted)


def read_watermark(table: str, settings: Settings | None = None) -> dict[str, Any] | None:
    """The landing query's last published watermark of a lake table, or None before the first.

    `{"watermark": ISO time, "complete_through": "YYYY-MM-DD", "max_event_time": ...,
    "batch_id": n, "published_at": ISO time}`: days up to `complete_through` are complete.
    """
    fs, path = filesystem_for(f"{table}/{WATERMARK_FILE}", settings)
    try:
        with fs.open_input_stream(path) as stream:
            doc: dict[str, Any] = json.loads(stream.read())
    except FileNotFoundError:
        return None
    return doc


def watermark_passed(settings: Settings, due: datetime, what: str) -> tuple[bool, str]:
    """Whether the orders table's watermark has passed `due` (the end of `what`, e.g. a day,
    plus its grace), and a sentence saying so either way."""
    mark = read_watermark(f"{settings.lake}/orders", settings)
    if mark is None:
        return False, "no lake watermark yet: is the streaming job running, and has it seen orders?"
    watermark = datetime.fromisoformat(mark["watermark"])
    if watermark < due:
        return False, (
            f"{what} is not complete: the lake watermark is at {watermark.isoformat()}, it must "
            f"pass {due.isoformat()}"
        )
    return True, f"{what} is complete (lake watermark {watermark.isoformat()})"
