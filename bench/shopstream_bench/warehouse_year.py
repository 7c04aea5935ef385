"""A year of small lake days through the warehouse: is day 365's run as cheap as day 10's?

Writes DAYS lake days of ORDERS orders each (one file per day, each committed as its own
file-sink batch, customers and products from the stack's PostgreSQL), then loads them as the
DAG does: days 1..HEAD one run each (stage: raw load + reconcile; build: dimensions, one
`dbt build`, publish), the middle as catch-up runs of up to 30 days, and the last TAIL days
one run each again. Each single-day run is timed step by step, and dbt's own per-node times
are kept, so growth would show in the node that grows.

The same-run baseline is what issue 10's models did that grew with history: one pass over
every order per run (customer lifetime value rebuilt from `fct_orders`, the serving summary's
distinct customers), timed as a query at each single-day run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from statistics import median
from typing import Any

from shopstream.config import Settings
from shopstream.warehouse import open_warehouse
from shopstream.warehouse.dbt import read_run_results
from shopstream.warehouse.load import build, load_days, stage
from shopstream_bench.warehouse import customer_ids, write_lake_day

__all__ = ["run"]

Report = Callable[[str], None]
FIRST = date(2025, 1, 1)
CATCH_UP = 30  # days per catch-up run in the middle of the year

# issue 10's whole-history work, as it ran every day before issue 22
WHOLE_HISTORY_SQL = (
    "select count(*) from (select customer_id, min(created_at), max(created_at), count(*), "
    "count(distinct order_date), sum(units), sum(order_total) from marts.fct_orders "
    "group by customer_id) as t"
)


def _quiet(_: str) -> None:
    pass


def _single(settings: Settings, day: date, index: int) -> dict[str, Any]:
    """One day's run as the DAG's tasks do it, timed; dbt's nodes; the baseline query."""
    started = time.monotonic()
    with open_warehouse(settings) as wh:
        stage(settings, wh, day)
    staged = time.monotonic()
    result = build(settings, [day], report=_quiet)
    built = time.monotonic()
    with open_warehouse(settings) as wh:
        t0 = time.monotonic()
        wh.query(WHOLE_HISTORY_SQL)
        history_pass = time.monotonic() - t0
        (facts,) = wh.query("select count(*) from marts.fct_orders")[0]
    nodes = {n.name: n.seconds for n in read_run_results(settings)[1] if n.kind == "model"}
    return {
        "day": index, "date": day.isoformat(), "facts_so_far": int(facts),
        "stage_s": round(staged - started, 3), "build_s": round(built - staged, 3),
        "dbt_s": result.seconds, "run_s": round(built - started, 3),
        "dbt_models_s": round(sum(nodes.values()), 3),
        "customer_models_s": round(
            sum(v for k, v in nodes.items() if k.startswith("customer")), 3
        ),
        "history_pass_s": round(history_pass, 4),
    }  # fmt: skip


def run(
    settings: Settings, root: Path, days: int, orders: int, head: int, tail: int, report: Report
) -> dict[str, Any]:
    customers, products = customer_ids(settings.postgres_url)
    settings = settings.model_copy(update={
        "lake_uri": (root / "lake").as_uri(),
        "warehouse_duckdb_path": root / "wh" / "year.duckdb",
        "data_dir": root / "data",
    })  # fmt: skip
    every = [FIRST + timedelta(days=i) for i in range(days)]
    started = time.monotonic()
    for i, day in enumerate(every):
        write_lake_day(root / "lake", orders, 1, customers, products, seed=i + 1, day=day, batch=i)
    report(f"wrote {days} lake days of {orders:,} orders in {time.monotonic() - started:.0f} s")

    singles: list[dict[str, Any]] = []
    for i, day in enumerate(every[:head], start=1):
        singles.append(_single(settings, day, i))
        report(_line(singles[-1]))
    middle = every[head : days - tail]
    catch_ups = []
    for lo in range(0, len(middle), CATCH_UP):
        chunk = middle[lo : lo + CATCH_UP]
        t0 = time.monotonic()
        load_days(settings, chunk, report=_quiet)
        seconds = time.monotonic() - t0
        catch_ups.append({"days": len(chunk), "first": chunk[0].isoformat(), "seconds": seconds})
        report(f"catch-up of {len(chunk)} days from {chunk[0]}: {seconds:.1f} s "
               f"({seconds / len(chunk):.2f} s a day)")  # fmt: skip
    for i, day in enumerate(every[days - tail :], start=days - tail + 1):
        singles.append(_single(settings, day, i))
        report(_line(singles[-1]))

    early = [s for s in singles if s["day"] <= head][-tail:]  # the last `tail` of the head
    late = [s for s in singles if s["day"] > days - tail]

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return round(median(r[key] for r in rows), 3)

    compare = {
        key: {"early": med(early, key), "late": med(late, key)}
        for key in ("run_s", "dbt_s", "dbt_models_s", "customer_models_s", "history_pass_s")
    }
    for key, v in compare.items():
        report(f"  {key:18} day {early[0]['day']}-{early[-1]['day']}: {v['early']:8.3f}   "
               f"day {late[0]['day']}-{late[-1]['day']}: {v['late']:8.3f}   "
               f"x {v['late'] / v['early'] if v['early'] else float('nan'):.2f}")  # fmt: skip
    return {
        "days": days, "orders_per_day": orders, "customers": len(customers),
        "products": len(products), "singles": singles, "catch_ups": catch_ups,
        "compare_median": compare,
    }  # fmt: skip


def _line(s: dict[str, Any]) -> str:
    return (
        f"day {s['day']:3} ({s['date']}): run {s['run_s']:5.2f} s (stage {s['stage_s']:.2f}, "
        f"build {s['build_s']:.2f}, dbt {s['dbt_s']:.2f}, models {s['dbt_models_s']:.2f}, "
        f"customers {s['customer_models_s']:.3f}); baseline history pass "
        f"{s['history_pass_s'] * 1000:.1f} ms over {s['facts_so_far']:,} orders"
    )
