"""The job's log: a summary a minute, a line of its own only for a batch worth a look."""

from __future__ import annotations

import logging

import pytest

from shopstream.streaming.job import BatchLog
from shopstream.streaming.sink import PartitionResult


def test_quiet_batches_are_summed_and_notable_ones_stand_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="shopstream.streaming.job")
    batches = BatchLog(every_s=3600, slow_s=2.0)
    for i in range(100):
        batches.batch(i, PartitionResult(records=10, orders=10, new=10), 3, took=0.3)
    assert caplog.records == []  # 100 ordinary batches: nothing yet
    batches.batch(100, PartitionResult(records=5, orders=4, new=4, dead=1), 2, took=0.3)
    batches.batch(101, PartitionResult(records=5, orders=5, new=5), 2, took=2.5)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["batch 100", "batch 101"]
    batches.flush()
    summary = caplog.records[-1].getMessage()
    assert "102 batches, 1010 records, 1009 new orders, 1 dead letters" in summary
    assert "median 0.300 s, max 2.500 s" in summary
