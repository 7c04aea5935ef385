"""Listing the committed files of a Spark file-sink table without Spark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopstream.streaming.committed import committed_files


def write_log(table: Path, name: str, paths: list[str], action: str = "add") -> None:
    log = table / "_spark_metadata"
    log.mkdir(parents=True, exist_ok=True)
    lines = ["v1"] + [
        json.dumps(
            {
                "path": p,
                "size": 1,
                "isDir": False,
                "modificationTime": 0,
                "blockReplication": 1,
                "blockSize": 1,
                "action": action,
            }
        )
        for p in paths
    ]
    (log / name).write_text("\n".join(lines))


def test_batches_after_the_latest_compaction_are_added(tmp_path: Path) -> None:
    t = tmp_path / "orders"
    write_log(t, "8", ["file:/l/dt=2026-01-01/old.parquet"])  # superseded by 9.compact
    write_log(
        t, "9.compact", ["file:/l/dt=2026-01-01/a.parquet", "file:/l/dt=2026-01-02/b.parquet"]
    )
    write_log(t, "10", ["file:/l/dt=2026-01-02/c.parquet"])
    write_log(t, "11", ["file:/l/dt=2026-01-02/c.parquet"], action="delete")
    write_log(t, "12", ["file:/l/dt=2026-01-03/d.parquet"])
    (t / "_spark_metadata" / ".12.tmp").write_text("partial")  # an in-progress commit
    assert committed_files(t.as_uri()) == [
        "file:/l/dt=2026-01-01/a.parquet",
        "file:/l/dt=2026-01-02/b.parquet",
        "file:/l/dt=2026-01-03/d.parquet",
    ]
    assert committed_files(str(t), day="2026-01-02") == ["file:/l/dt=2026-01-02/b.parquet"]


def test_a_table_nothing_was_committed_to_is_empty(tmp_path: Path) -> None:
    assert committed_files((tmp_path / "none").as_uri()) == []


def test_an_unknown_log_version_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "_spark_metadata"
    log.mkdir()
    (log / "0").write_text("v2\n{}")
    with pytest.raises(ValueError, match="unexpected"):
        committed_files(str(tmp_path))
