"""The checks that make a bad load loud: COPY's per-file result, and the reconciliation."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from shopstream.warehouse.base import WarehouseError
from shopstream.warehouse.load import Reconciliation
from shopstream.warehouse.snowflake_store import check_copy

DAY = date(2026, 11, 3)
FILES = {"part-0.parquet": 10, "part-1.parquet": 5}


def _row(name: str, loaded: int, status: str = "LOADED", errors: int = 0) -> dict[str, Any]:
    return {
        "file": f"lake_stage/abc/{name}", "status": status, "rows_parsed": loaded,
        "rows_loaded": loaded, "errors_seen": errors, "first_error": "bad row" if errors else None,
    }  # fmt: skip


def test_copy_that_loaded_every_file_whole_passes() -> None:
    check_copy([_row("part-0.parquet", 10), _row("part-1.parquet", 5)], FILES, DAY)


@pytest.mark.parametrize(
    ("results", "says"),
    [
        ([_row("part-0.parquet", 10)], "part-1.parquet: not in COPY's result"),
        ([_row("part-0.parquet", 9), _row("part-1.parquet", 5)], "9 rows loaded"),
        ([_row("part-0.parquet", 10), _row("part-1.parquet", 5, errors=1)], "1 errors"),
        ([_row("part-0.parquet", 0, "LOAD_SKIPPED"), _row("part-1.parquet", 5)], "LOAD_SKIPPED"),
        (
            [_row("part-0.parquet", 10), _row("part-1.parquet", 5), _row("other.parquet", 3)],
            "not the day's",
        ),
    ],
)
def test_copy_that_did_not_load_exactly_the_files_fails_naming_the_problem(
    results: list[dict[str, Any]], says: str
) -> None:
    with pytest.raises(WarehouseError) as failure:
        check_copy(results, FILES, DAY)
    assert says in str(failure.value)
    assert str(DAY) in str(failure.value)


def test_a_reconciliation_names_both_numbers_and_the_day() -> None:
    good = Reconciliation(DAY, lake_rows=1200, lake_orders=1100, raw_rows=1200, raw_orders=1100)
    assert good.ok
    bad = Reconciliation(DAY, lake_rows=1200, lake_orders=1100, raw_rows=1180, raw_orders=1100)
    assert not bad.ok
    text = bad.describe()
    assert "2026-11-03" in text
    assert "1,180 rows" in text
    assert "1,200 rows" in text
    assert "MISMATCH" in text
