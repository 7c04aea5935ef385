"""Compaction of a lake day (streaming/compaction.py) on a real local lake of Parquet files
and a file-sink log: the same records in a few files, published atomically, late files
folded in later, a SIGKILL before the publish invisible to readers, and the warehouse's
view of the day unchanged in rows and orders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from shopstream.config import Settings
from shopstream.streaming.committed import (
    committed_files,
    lake_days,
    lake_files,
    read_manifest,
)
from shopstream.streaming.compaction import compact_day, vacuum
from shopstream.warehouse.lakeday import lake_orders, read_lake_day

DAY = date(2026, 3, 2)


class Lake:
    """A file-sink table written the way the landing query writes it: one Parquet file per
    batch under dt=D, each batch committed as `_spark_metadata/<batch>`."""

    def __init__(self, root: Path) -> None:
        self.table = root / "lake" / "orders"
        (self.table / "_spark_metadata").mkdir(parents=True)
        self.batch = 0
        self.offset = 0
        self.entries: dict[str, dict[str, object]] = {}

    def commit(
        self,
        day: date | str,
        rows: int,
        orders: int | None = None,
        written: datetime | None = None,
    ) -> Path:
        """A batch of `rows` records of `day` (or the `unparsed` partition); its log entry
        says the file was written at `written` (the epoch if None, as Spark never would)."""
        directory = self.table / f"dt={day}"
        directory.mkdir(exist_ok=True)
        offsets = list(range(self.offset, self.offset + rows))
        self.offset += rows
        ids = [f"order-{o % (orders or rows) if orders else o}" for o in offsets]
        at = datetime.combine(day if isinstance(day, date) else DAY, datetime.min.time(), UTC)
        table = pa.table({
            "key": pa.array([str(o).encode() for o in offsets], pa.binary()),
            "value": pa.array([b'{"order_id": "%d"}' % o for o in offsets], pa.binary()),
            "topic": pa.array(["orders"] * rows),
            "partition": pa.array([o % 3 for o in offsets], pa.int32()),
            "offset": pa.array(offsets, pa.int64()),
            "kafka_timestamp": pa.array([at] * rows, pa.timestamp("us")),
            "order_id": pa.array(ids),
            "created_at": pa.array([at] * rows, pa.timestamp("us")),
        })  # fmt: skip
        path = directory / f"part-{self.batch:05d}.c000.snappy.parquet"
        pq.write_table(table, path)
        entry = {
            "path": f"file:{path}", "size": path.stat().st_size, "action": "add",
            "modificationTime": round(written.timestamp() * 1000) if written else 0,
        }  # fmt: skip
        self.entries[entry["path"]] = entry
        (self.table / "_spark_metadata" / str(self.batch)).write_text(
            "v1\n" + json.dumps(entry) + "\n"
        )
        self.batch += 1
        return path

    def expire(self, keep: list[Path]) -> None:
        """The log compaction of a sink with a retention: a `<batch>.compact` naming only the
        files in `keep` (the others were written longer ago than the retention)."""
        kept = [self.entries[f"file:{p}"] for p in keep]
        (self.table / "_spark_metadata" / f"{self.batch}.compact").write_text(
            "v1\n" + "".join(json.dumps(e) + "\n" for e in kept)
        )
        self.batch += 1


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, cache_dir=tmp_path / "cache")


def _records(settings: Settings, paths: list[str]) -> list[tuple[object, ...]]:
    table = ds.dataset([p.removeprefix("file:") for p in paths], format="parquet").to_table()
    rows = zip(
        *(table[c].to_pylist() for c in ("topic", "partition", "offset", "value")), strict=True
    )
    return sorted(rows)


def test_a_day_becomes_a_few_files_with_exactly_its_records(lake: Lake, settings: Settings) -> None:
    for _ in range(40):
        lake.commit(DAY, 25)
    lake.commit(DAY + timedelta(days=1), 10)  # another day: untouched
    table = settings.lake + "/orders"
    raw = committed_files(table, str(DAY))
    before = _records(settings, raw)
    lake_day = read_lake_day(settings, DAY)

    done = compact_day(settings, DAY, target_bytes=20_000)
    assert done.version is not None
    assert (done.files_in, done.rows) == (40, 1000)
    assert 1 < done.files_out < 40
    files = lake_files(table, str(DAY))
    assert len(files) == done.files_out
    assert all(f"/_compacted/dt={DAY}/{done.version}/" in f for f in files)
    assert _records(settings, files) == before  # every record once, bytes untouched
    assert committed_files(table, str(DAY)) == raw  # Spark's view: the log, untouched
    assert len(lake_files(table, str(DAY + timedelta(days=1)))) == 1
    assert len(lake_files(table)) == done.files_out + 1
    after = read_lake_day(settings, DAY)  # the warehouse's view: same rows and orders
    assert after.rows == lake_day.rows == 1000
    assert lake_orders(settings, after) == lake_orders(settings, lake_day) == 1000
    assert lake_days(settings) == [DAY, DAY + timedelta(days=1)]
    # nothing committed since: nothing to do
    assert compact_day(settings, DAY).version is None


def test_files_committed_after_a_compaction_are_read_and_folded_in_by_the_next(
    lake: Lake, settings: Settings
) -> None:
    for _ in range(5):
        lake.commit(DAY, 10)
    table = settings.lake + "/orders"
    first = compact_day(settings, DAY)
    late = lake.commit(DAY, 3)  # a backfilled order of DAY, after the compaction
    files = lake_files(table, str(DAY))
    assert f"file:{late}" in files
    assert len(_records(settings, files)) == 53
    second = compact_day(settings, DAY, now=datetime.now(UTC) + timedelta(hours=1))
    assert second.version not in (None, first.version)
    assert (second.files_in, second.rows) == (2, 53)
    manifest = read_manifest(table, DAY)
    assert manifest is not None
    assert manifest.replaces == set(committed_files(table, str(DAY)))
    assert _records(settings, lake_files(table, str(DAY))) == _records(
        settings, committed_files(table, str(DAY))
    )
    # the first version stays while a reader may still be reading it (it was superseded
    # just now), and goes at a later compaction once superseded longer than the delay
    compacted = lake.table / "_compacted" / f"dt={DAY}"
    assert sorted(p.name for p in compacted.iterdir()) == sorted([first.version, second.version])
    assert read_manifest(table, DAY).superseded[0][0] == first.version  # type: ignore[union-attr]
    later = datetime.now(UTC) + timedelta(hours=1, minutes=5)
    assert compact_day(settings, DAY, now=later).version is None  # nothing new: cleanup only
    assert sorted(p.name for p in compacted.iterdir()) == sorted([first.version, second.version])
    compact_day(settings, DAY, now=later + timedelta(minutes=10))
    assert sorted(p.name for p in compacted.iterdir()) == [second.version]


def test_a_file_committed_during_a_compaction_is_read_once(
    lake: Lake, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log is read once: a file committed while the compaction writes is not in what it
    replaces, so readers take it beside the new version, once."""
    import shopstream.streaming.compaction as compaction

    for _ in range(4):
        lake.commit(DAY, 10)
    table = settings.lake + "/orders"
    write = compaction._write
    late: list[Path] = []

    def commit_meanwhile(*args: object, **kwargs: object) -> object:
        late.append(lake.commit(DAY, 5))
        return write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(compaction, "_write", commit_meanwhile)
    done = compact_day(settings, DAY)
    assert done.rows == 40
    files = lake_files(table, str(DAY))
    assert f"file:{late[0]}" in files
    assert len(_records(settings, files)) == 45  # each record once
    monkeypatch.setattr(compaction, "_write", write)
    again = compact_day(settings, DAY)
    assert again.rows == 45
    assert len(_records(settings, lake_files(table, str(DAY)))) == 45


KILLED = """
import sys
from datetime import date
from shopstream.config import Settings
from shopstream.streaming.compaction import compact_day, vacuum
compact_day(Settings(data_dir=sys.argv[1], cache_dir=sys.argv[1] + "/cache"), date(2026, 3, 2))
"""


def test_a_compaction_killed_before_its_publish_changes_nothing_readers_see(
    lake: Lake, settings: Settings, tmp_path: Path
) -> None:
    for _ in range(8):
        lake.commit(DAY, 10)
    table = settings.lake + "/orders"
    before = lake_files(table, str(DAY))
    env = {**os.environ, "SHOPSTREAM_FAILPOINTS": "lake.compact.before_publish"}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(tmp_path)], env=env, capture_output=True, timeout=120
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    orphans = list((lake.table / "_compacted" / f"dt={DAY}").iterdir())
    assert len(orphans) == 1  # written, never published
    assert read_manifest(table, DAY) is None
    assert lake_files(table, str(DAY)) == before  # the raw files, as if nothing happened
    assert read_lake_day(settings, DAY).rows == 80
    done = compact_day(settings, DAY)
    assert done.rows == 80
    assert _records(settings, lake_files(table, str(DAY))) == _records(settings, before)
    versions = lake.table / "_compacted" / f"dt={DAY}"
    assert len(list(versions.iterdir())) == 2  # the orphan might still be being written
    compact_day(settings, DAY, now=datetime.now(UTC) + timedelta(hours=7))
    assert [p.name for p in versions.iterdir()] == [done.version]  # the orphan cleaned up


def test_vacuum_deletes_what_no_reader_can_be_reading_on_every_day(
    lake: Lake, settings: Settings, tmp_path: Path
) -> None:
    other = DAY + timedelta(days=1)
    for day in (DAY, other):
        for _ in range(3):
            lake.commit(day, 10)
    table = settings.lake + "/orders"
    env = {**os.environ, "SHOPSTREAM_FAILPOINTS": "lake.compact.before_publish"}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(tmp_path)], env=env, capture_output=True, timeout=120
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    now = datetime.now(UTC)
    current = compact_day(settings, DAY, now=now)  # the orphan is too young to judge
    first = compact_day(settings, other, now=now)
    lake.commit(other, 5)  # a late file: the next compaction supersedes `first`
    second = compact_day(settings, other, now=now + timedelta(minutes=1))
    versions = {d: lake.table / "_compacted" / f"dt={d}" for d in (DAY, other)}
    assert len(list(versions[DAY].iterdir())) == 2
    assert {p.name for p in versions[other].iterdir()} == {first.version, second.version}
    before = {d: lake_files(table, str(d)) for d in (DAY, other)}

    assert vacuum(settings, now=now + timedelta(minutes=5)).versions == []  # both readable
    removed = vacuum(settings, now=now + timedelta(minutes=20)).versions
    assert removed == [str(versions[other] / first.version)]  # superseded 19 min ago
    assert len(list(versions[DAY].iterdir())) == 2  # the orphan: started 20 min ago
    removed = vacuum(settings, now=now + timedelta(hours=7)).versions
    assert len(removed) == 1
    assert [p.name for p in versions[DAY].iterdir()] == [current.version]
    assert [p.name for p in versions[other].iterdir()] == [second.version]
    assert {d: lake_files(table, str(d)) for d in (DAY, other)} == before  # readers unmoved
    assert read_lake_day(settings, other).rows == 35


def test_raw_files_a_manifest_replaces_go_once_no_log_names_them(
    lake: Lake, settings: Settings
) -> None:
    """With the sink's retention the log drops a file once it is a week old; a compacted
    day's raw files are then deleted by `vacuum`, and every reader still sees the day whole."""
    old = [lake.commit(DAY, 10) for _ in range(3)]
    now = datetime.now(UTC)
    compact_day(settings, DAY, now=now)
    late = lake.commit(DAY, 5, written=now)  # committed after the compaction
    table = settings.lake + "/orders"
    before = _records(settings, lake_files(table, str(DAY)))
    assert len(before) == 35
    week = timedelta(hours=settings.lake_log_retention_hours)
    assert week == timedelta(days=7)  # the default

    assert vacuum(settings, now=now + week).raw_days == []  # a reader may still list them
    assert vacuum(settings, now=now + week + timedelta(hours=1)).raw_days == []  # still logged
    assert all(p.exists() for p in old)
    lake.expire(keep=[late])  # Spark's next log compaction, past the retention
    assert committed_files(table, str(DAY)) == [f"file:{late}"]
    assert _records(settings, lake_files(table, str(DAY))) == before  # the manifest holds them

    result = vacuum(settings, now=now + week + timedelta(hours=1))
    assert (result.raw_days, result.raw_files) == ([str(DAY)], 3)
    assert not any(p.exists() for p in old)
    assert late.exists()  # committed after the compaction: not replaced
    assert _records(settings, lake_files(table, str(DAY))) == before
    assert read_lake_day(settings, DAY).rows == 35
    assert vacuum(settings, now=now + week + timedelta(hours=2)).raw_days == []  # done once
    with pytest.MonkeyPatch.context() as patch:  # settled: a listing, no manifest read
        patch.setattr("shopstream.streaming.compaction.read_manifest", None)
        assert vacuum(settings, now=now + week + timedelta(hours=3)).versions == []
    # without a retention the log keeps every file and nothing raw is deleted
    unbounded = settings.model_copy(update={"lake_log_retention_hours": 0})
    lake.commit(DAY + timedelta(days=1), 4)
    compact_day(unbounded, DAY + timedelta(days=1), now=now)
    lake.expire(keep=[late])
    assert vacuum(unbounded, now=now + timedelta(days=400)).raw_days == []


def test_files_about_to_leave_the_log_are_compacted_first(lake: Lake, settings: Settings) -> None:
    """What no run's plan reaches (a day before the DAG's start, `unparsed`, a late file of a
    day loaded long ago) is compacted before the retention could drop it from the log; the
    job applies its retention only when nothing old lacks a manifest."""
    from shopstream.streaming.compaction import compact_at_risk
    from shopstream.streaming.lake import log_retention

    now = datetime.now(UTC)
    lake.commit(DAY, 10, written=now - timedelta(days=3))
    lake.commit("unparsed", 2, written=now - timedelta(days=3))
    recent = DAY + timedelta(days=1)
    lake.commit(recent, 7, written=now - timedelta(hours=1))
    assert log_retention(settings, now=now) is None  # 3-day-old files without a manifest
    done, failed = compact_at_risk(settings, now=now)
    assert sorted(str(c.day) for c in done) == [str(DAY), "unparsed"]
    assert failed == []
    assert read_manifest(settings.lake + "/orders", "unparsed") is not None
    assert read_manifest(settings.lake + "/orders", recent) is None  # an hour old: the DAG's
    assert log_retention(settings, now=now) == f"{7 * 24 * 3600 * 1000}ms"
    assert compact_at_risk(settings, now=now) == ([], [])
    assert log_retention(settings.model_copy(update={"lake_log_retention_hours": 0})) is None


def test_a_partition_that_fails_to_compact_does_not_hold_back_the_others(
    lake: Lake, settings: Settings
) -> None:
    from shopstream.streaming.compaction import compact_at_risk

    now = datetime.now(UTC)
    old = now - timedelta(days=3)
    gone = lake.commit(DAY, 10, written=old)
    lake.commit(DAY + timedelta(days=1), 10, written=old)
    gone.unlink()  # a file the log names is missing: that day's compaction must refuse
    done, failed = compact_at_risk(settings, now=now)
    assert [c.day for c in done] == [DAY + timedelta(days=1)]
    assert len(failed) == 1
    assert failed[0].startswith(f"dt={DAY}: ")


def test_the_running_job_judges_its_retention_again_each_check(settings: Settings) -> None:
    """The guard asks every SHOPSTREAM_LAKE_RETENTION_CHECK_S whether the retention holds,
    and says to restart the landing query only when the answer changes."""
    from shopstream.streaming.lake import RetentionGuard

    now = [0.0]
    guard = RetentionGuard(settings, "604800000ms", clock=lambda: now[0])
    answers = iter([None, None, "604800000ms"])
    judge = lambda: next(answers)  # noqa: E731
    assert guard.due(judge) == (False, "604800000ms")  # not yet time: not even asked
    now[0] = 3600.0
    assert guard.due(judge) == (True, None)  # a file is at risk: restart without it
    assert guard.due(judge) == (False, None)  # checked a moment ago
    now[0] = 7200.0
    assert guard.due(judge) == (False, None)  # still at risk: nothing to change
    now[0] = 10800.0
    assert guard.due(judge) == (True, "604800000ms")  # compacted since: the retention again

    def unreachable() -> str | None:
        raise OSError("the lake's store did not answer")

    now[0] = 14400.0
    assert guard.due(unreachable) == (False, "604800000ms")  # kept; judged at the next check
    unbounded = settings.model_copy(update={"lake_log_retention_hours": 0})
    never = RetentionGuard(unbounded, None, clock=lambda: now[0] + 10**6)
    assert never.due(lambda: "1ms") == (False, None)  # no retention configured: never asks
