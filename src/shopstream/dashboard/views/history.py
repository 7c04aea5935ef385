"""History, from the warehouse (not MongoDB): daily sales by category over months, the top
customers by lifetime value, and the last loads with their reconciliation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from shopstream.dashboard import resources
from shopstream.dashboard.charts import history_chart
from shopstream.dashboard.format import money, number
from shopstream.warehouse.serving import History

__all__ = ["render"]

RANGES = {"30 days": 30, "90 days": 90, "1 year": 365, "All": None}
STATUS = {"built": "✅ built", "reconciled": "✅ reconciled", "loaded": "⏳ loaded",
          "mismatch": "❌ mismatch", "failed": "❌ failed", "loading": "⏳ loading"}  # fmt: skip


@st.cache_data(ttl=30, show_spinner=False)
def _read(what: str, *args: Any) -> Any:
    history = History(resources.settings())
    return getattr(history, what)(*args)


def render() -> None:
    settings = resources.settings()
    st.title("History")
    where = (
        "a read-only copy of the DuckDB warehouse"
        if settings.warehouse == "duckdb"
        else "Snowflake"
    )
    st.caption(
        f"From the warehouse's dbt marts ({where}), loaded once a day by Airflow's "
        "`lake_to_warehouse` DAG after each lake day (UTC) is complete and reconciled."
    )
    if not History(settings).available():
        st.info(
            "Nothing is in the warehouse yet: Airflow's `lake_to_warehouse` DAG loads each "
            "complete lake day (or run `shopstream warehouse load --date YYYY-MM-DD`)."
        )
        return
    summary = _read("summary")
    if not summary or not summary.get("orders"):
        st.info("The warehouse holds no orders yet: the loads so far found empty days.")
    else:
        _kpis(summary, settings.currency)
        _sales(summary, settings.currency)
        _customers(settings.currency)
    _loads()


def _kpis(summary: dict[str, Any], currency: str) -> None:
    cols = st.columns(4)
    cols[0].metric("Orders", number(float(summary["orders"])))
    cols[1].metric("Revenue", money(float(summary["revenue"]) * 100, currency))
    cols[2].metric("Customers", number(float(summary["customers"])))
    first, last = (pd.Timestamp(summary[k]).date() for k in ("first_day", "last_day"))
    cols[3].metric("Days", number((last - first).days + 1), help=f"{first} – {last} (UTC)")
    st.caption(f"Loaded days {first} – {last} (UTC).")


def _sales(summary: dict[str, Any], currency: str) -> None:
    st.subheader("Daily sales by category")
    picked = st.segmented_control("Range", list(RANGES), default="90 days", key="history_range")
    last = pd.Timestamp(summary["last_day"]).date()
    earliest = pd.Timestamp(summary["first_day"]).date()
    days = RANGES.get(picked or "90 days")
    first = earliest if days is None else max(earliest, last - timedelta(days=days - 1))
    frame = _read("category_sales", first, last)
    if frame.empty:
        st.info(f"No sales between {first} and {last}.")
        return
    st.altair_chart(history_chart(frame, currency), use_container_width=True)
    totals = frame.groupby("category", as_index=False)[["orders", "units", "revenue"]].sum()
    totals = totals.sort_values("revenue", ascending=False)
    st.caption(
        f"{first} – {last}: "
        + ", ".join(
            f"{r.category} {money(float(r.revenue) * 100, currency)}"
            for r in totals.head(5).itertuples()
        )
    )


def _customers(currency: str) -> None:
    st.subheader("Top customers by lifetime value")
    top = _read("top_customers", 20)
    st.dataframe(
        pd.DataFrame(
            {
                "Customer": top["customer_id"],
                "Name": top["name"],
                "Segment": top["segment"],
                "Country": top["country"],
                "Orders": top["orders"].astype(int),
                "Lifetime value": [money(float(v) * 100, currency) for v in top["lifetime_value"]],
                "Average order": [
                    money(float(v) * 100, currency) for v in top["average_order_value"]
                ],
                "First order": pd.to_datetime(top["first_order_at"]).dt.strftime("%Y-%m-%d"),
                "Last order": pd.to_datetime(top["last_order_at"]).dt.strftime("%Y-%m-%d"),
            }
        ),
        hide_index=True,
        use_container_width=True,
    )


def _loads() -> None:
    st.subheader("Last loads")
    loads = _read("loads", 30)
    if loads.empty:
        st.info("No load has run yet.")
        return
    bad = loads[loads["status"].isin(["mismatch", "failed"])]
    if not bad.empty:
        st.error(f"{len(bad)} of the last {len(loads)} loads failed: {bad['message'].iloc[0]}")
    seconds = loads["load_seconds"].fillna(0) + loads["build_seconds"].fillna(0)
    st.dataframe(
        pd.DataFrame(
            {
                "Day": pd.to_datetime(loads["day"]).dt.strftime("%Y-%m-%d"),
                "Status": [STATUS.get(s, s) for s in loads["status"]],
                "Lake rows": loads["lake_rows"].astype("Int64"),
                "Loaded rows": loads["raw_rows"].astype("Int64"),
                "Orders": loads["raw_orders"].astype("Int64"),
                "Duration (s)": seconds.round(1),
                "Started (UTC)": pd.to_datetime(loads["started_at"], utc=True).dt.strftime(
                    "%Y-%m-%d %H:%M"
                ),
            }
        ),
        hide_index=True,
        use_container_width=True,
    )
