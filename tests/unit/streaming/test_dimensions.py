"""The per-process dimension cache: lazy by id, refreshed by `updated_at`, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shopstream.streaming.dimensions import Dimensions

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


class Result(list[tuple[Any, ...]]):
    def fetchone(self) -> tuple[Any, ...] | None:
        return self[0] if self else None


class FakePostgres:
    """Answers the three statement shapes `Dimensions` sends, from in-memory tables whose rows
    end with `updated_at` (a unit-test double: the integration test uses a real server)."""

    closed = False

    def __init__(self, customers: int, products: int) -> None:
        people = range(1, customers + 1)
        goods = range(1, products + 1)
        self.tables: dict[str, dict[int, tuple[Any, ...]]] = {
            "customers": {i: (i, f"c{i}", "consumer", "Oslo", "NO", T0) for i in people},
            "products": {i: (i, f"p{i}", "Books", Decimal("1.50"), T0) for i in goods},
        }
        self.statements: list[str] = []
        self.rows_sent = 0

    def execute(self, query: str, params: tuple[Any, ...] = ()) -> Result:
        self.statements.append(query)
        rows = self.tables["customers" if "FROM customers" in query else "products"]
        if "max(updated_at)" in query:
            return Result([(max(r[-1] for r in rows.values()),)])
        if "id = ANY" in query:
            found = [r[:-1] for i, r in rows.items() if i in params[0]]
        else:  # changed since the mark, looking a minute back
            found = [r for r in rows.values() if r[-1] > params[0] - timedelta(seconds=60)]
        self.rows_sent += len(found)
        return Result(found)

    def touch(self, table: str, row_id: int, at: datetime, **values: Any) -> None:
        columns = ("id", "name", "segment", "city", "country") if table == "customers" else (
            "id", "name", "category", "price")  # fmt: skip
        row = dict(zip(columns, self.tables[table][row_id][:-1], strict=True)) | values
        self.tables[table][row_id] = (*row.values(), at)

    def close(self) -> None:
        self.closed = True


def test_ids_are_read_when_first_needed_and_then_served_from_the_cache() -> None:
    pg = FakePostgres(customers=1000, products=50)
    dims = Dimensions(lambda: pg, max_age_s=3600, max_entries=100)  # type: ignore[arg-type,return-value]
    assert set(dims.customers({1, 2, 3})) == {1, 2, 3}
    assert pg.rows_sent == 3  # never the whole table
    statements = len(pg.statements)
    assert dims.customers({2, 3})[3].name == "c3"
    assert len(pg.statements) == statements  # cached
    assert dims.customers({999_999}) == {}  # unknown: asked again next time, never cached
    assert dims.customers({999_999}) == {}
    assert len(pg.statements) == statements + 2


def test_a_row_added_or_changed_in_postgres_is_seen_in_time() -> None:
    pg = FakePostgres(customers=10, products=10)
    now = [0.0]
    dims = Dimensions(lambda: pg, max_age_s=30, max_entries=100, clock=lambda: now[0])  # type: ignore[arg-type,return-value]
    assert dims.products({8})[8].price == Decimal("1.50")
    # A customer who signed up a second ago: an id the cache does not know is read at once.
    pg.tables["customers"][11] = (11, "Grace Hopper", "corporate", "Arlington", "US", T0)
    assert dims.customers({11})[11].name == "Grace Hopper"
    # A price change reaches the cache at the next refresh, not before.
    pg.touch("products", 8, T0 + timedelta(minutes=5), price=Decimal("2.25"))
    now[0] = 10
    assert dims.products({8})[8].price == Decimal("1.50")
    now[0] = 31
    assert dims.products({8})[8].price == Decimal("2.25")


def test_the_cache_stays_bounded_however_long_it_runs() -> None:
    pg = FakePostgres(customers=5000, products=10)
    dims = Dimensions(lambda: pg, max_age_s=0, max_entries=200)  # type: ignore[arg-type,return-value]
    for round_ in range(50):  # 50 refreshes, 5,000 distinct customers asked for
        ids = set(range(round_ * 100 + 1, round_ * 100 + 101))
        pg.touch("customers", round_ + 1, T0 + timedelta(minutes=round_), name=f"v{round_}")
        assert len(dims.customers(ids)) == 100
        assert len(dims.tables[0].rows) <= 200
    assert len(dims) <= 200 + 10
    # Refreshes fetch only what changed since the mark (plus the minute of overlap).
    refreshes = [s for s in pg.statements if "updated_at >" in s and "customers" in s]
    assert len(refreshes) >= 49
    assert dims.tables[0].high_water == T0 + timedelta(minutes=49)
