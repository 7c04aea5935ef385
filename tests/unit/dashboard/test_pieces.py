"""The dashboard's pure pieces: formatting, top N + Other, API rates, the lake summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shopstream.dashboard.format import ago, change, local_time, money, number
from shopstream.dashboard.health_checks import ApiRates, api_sample, lake_state
from shopstream.store.rollup_reader import OTHER, top_categories
from shopstream.store.stream_status import progress_document
from shopstream.streaming.progress import ProgressPoller

METRICS = """# TYPE shopstream_http_requests counter
shopstream_http_requests_total{handler="/order",method="POST",status="202"} 10.0
shopstream_http_requests_total{handler="/order",method="POST",status="422"} 2.0
shopstream_http_requests_total{handler="/orders",method="POST",status="503"} 1.0
# TYPE shopstream_orders counter
shopstream_orders_total{outcome="accepted"} 30.0
shopstream_orders_total{outcome="invalid"} 2.0
"""


def test_money_numbers_and_changes_read_as_people_write_them() -> None:
    assert money(123456, "USD") == "$1,234.56"
    assert money(-5, "EUR") == "-€0.05"
    assert money(100, "CHF") == "1.00 CHF"
    assert money(None, "USD") == "–"
    assert number(1234567) == "1,234,567"
    assert change(150, 100) == "+50.0%"
    assert change(50, 100) == "-50.0%"
    assert change(5, 0) == "new"
    assert change(0, 0) == "±0%"
    assert change(None, 3) is None


def test_times_are_shown_in_the_business_timezone() -> None:
    at = datetime(2026, 11, 28, 14, 5, 30, tzinfo=UTC)
    assert local_time(at, ZoneInfo("America/New_York"), True) == "2026-11-28 09:05:30 EST"
    assert ago(at - timedelta(seconds=4), at) == "4 s ago"
    assert ago(at - timedelta(minutes=30), at) == "30 min ago"
    assert ago(None, at) == "never"


def test_top_categories_keep_n_and_sum_the_rest_as_other() -> None:
    lines = {"a": [1, 1], "b": [5, 5], "c": [3, 0], "d": [0, 2]}
    top = top_categories(lines, 2)
    assert list(top) == ["b", "c", OTHER]  # c (3) beats a (2) and d (2)
    assert top[OTHER] == [1, 3]
    assert top_categories(lines, 9) == {k: lines[k] for k in ("b", "c", "a", "d")}


def test_api_rates_are_differences_over_time_and_survive_a_restart() -> None:
    sample = api_sample(METRICS, at=0)
    assert sample.requests == {"2xx": 10.0, "4xx": 2.0, "5xx": 1.0}
    assert sample.orders == {"accepted": 30.0, "invalid": 2.0}
    texts = iter([METRICS, METRICS.replace(" 10.0", " 20.0"), METRICS.replace(" 10.0", " 4.0")])
    rates = ApiRates("http://api/metrics", fetch=lambda _url: next(texts))
    assert rates.sample() is None  # one sample: no interval yet
    second = rates.sample()
    assert second is not None
    assert second[0]["2xx"] > 0
    third = rates.sample()  # counters went down: the API restarted, all 4 are new
    assert third is not None
    assert third[0]["2xx"] > 0


def test_the_lake_summary_counts_files_and_days() -> None:
    files = ["file:/l/orders/dt=2026-11-27/a.parquet", "file:/l/orders/dt=2026-11-28/b.parquet",
             "file:/l/orders/dt=2026-11-28/c.parquet"]  # fmt: skip
    state = lake_state(lambda: files, lambda: {"complete_through": "2026-11-27"})
    assert (state.files, state.days, state.complete_through) == (3, ["2026-11-27", "2026-11-28"],
                                                                 "2026-11-27")  # fmt: skip
    older = lake_state(lambda: files, lambda: None, lambda: ["2026-10-01", "2026-11-27"])
    assert older.days == ["2026-10-01", "2026-11-27", "2026-11-28"]  # out of the log: compacted
    empty = lake_state(list, lambda: None)
    assert (empty.files, empty.days, empty.complete_through) == (0, [], None)


@pytest.mark.parametrize(
    "end_offset", ['{"orders":{"0":120,"1":7}}', {"orders": {"0": 120, "1": 7}}]
)  # the JSON of a progress names offsets as an object; PySpark's attribute, as a string
def test_a_query_progress_becomes_its_status_document(end_offset: object) -> None:
    progress = {
        "name": "enrich", "id": "q-1", "runId": "r-1", "batchId": 41,
        "timestamp": "2026-11-28T14:05:30.123Z", "numInputRows": 57,
        "inputRowsPerSecond": 10.04, "processedRowsPerSecond": 99.0,
        "durationMs": {"triggerExecution": 312}, "sources": [{"endOffset": end_offset}],
    }  # fmt: skip
    doc = progress_document(progress)
    assert doc["_id"] == "query:enrich"
    assert doc["end_offsets"] == {"orders": {"0": 120, "1": 7}}
    assert (doc["batch_id"], doc["input_rows"], doc["duration_ms"]) == (41, 57, 312)
    assert doc["trigger_at"] == datetime(2026, 11, 28, 14, 5, 30, 123000, tzinfo=UTC)


class _Query:
    def __init__(self, *progress: dict[str, object] | None) -> None:
        self.progress = list(progress)

    @property
    def lastProgress(self) -> dict[str, object] | None:  # noqa: N802 - Spark's name
        return self.progress.pop(0) if len(self.progress) > 1 else self.progress[0]


def test_the_poller_publishes_each_new_progress_once() -> None:
    first = {"name": "lake", "runId": "r", "batchId": 1, "timestamp": "t1"}
    second = {"name": "lake", "runId": "r", "batchId": 2, "timestamp": "t2"}
    seen: list[object] = []
    poller = ProgressPoller([seen.append])
    lake, idle = _Query(first, first, second), _Query(None)
    assert [poller.poll([lake, idle]) for _ in range(4)] == [1, 0, 1, 0]
    assert seen == [first, second]
