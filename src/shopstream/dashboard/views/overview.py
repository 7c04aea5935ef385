"""Overview: KPIs for a window with their true deltas, trends, top products, freshness."""

from __future__ import annotations

from datetime import datetime, tzinfo

import streamlit as st
from confluent_kafka import KafkaException

from shopstream.dashboard import resources
from shopstream.dashboard.charts import category_chart, orders_chart
from shopstream.dashboard.format import ago, change, local_time, money, number
from shopstream.domain.windows import WINDOWS
from shopstream.store.errors import StoreUnavailableError
from shopstream.store.rollup_reader import Kpis, Totals

__all__ = ["render"]


def render() -> None:
    settings = resources.settings()
    st.title("Overview")
    left, right = st.columns([3, 1])
    with left:
        window = st.segmented_control(
            "Window", list(WINDOWS), format_func=WINDOWS.__getitem__, default="today",
            key="overview_window", selection_mode="single",
        )  # fmt: skip
    with right:
        top_n = st.number_input(
            "Top categories", min_value=1, max_value=12, value=5, key="overview_top_n"
        )
    window = window or "today"

    @st.fragment(run_every=settings.dashboard_refresh_s)
    def live() -> None:
        now = resources.clock().now()
        try:
            _live(window, int(top_n), now)
        except StoreUnavailableError as exc:
            st.error(
                f"MongoDB at {settings.mongo_url} is not answering ({exc.cause}). "
                "Is the stack up? `shopstream up` starts it; `shopstream status` shows it."
            )

    live()


def _live(window: str, top_n: int, now: datetime) -> None:
    settings, tz, reader = resources.settings(), resources.tz(), resources.reader()
    kpis = reader.kpis(window, now)
    _kpi_row(kpis, settings.currency)
    _caption(kpis, tz)
    trend = reader.trend(window, now, top_n)
    charts = st.columns(2)
    with charts[0]:
        st.subheader(f"Orders per {trend.granularity}")
        st.altair_chart(orders_chart(trend, tz), width="stretch")
    with charts[1]:
        st.subheader(f"Sales by category (top {top_n})")
        if trend.categories:
            chart = category_chart(trend, tz, settings.currency)
            st.altair_chart(chart, width="stretch")
        else:
            st.info("No sales in this window yet.")
    st.caption("The last point of each line is still filling (dashed).")
    bottom = st.columns([3, 2])
    with bottom[0]:
        today = reader.today(now)
        st.subheader(f"Top products today ({today:%a %d %b})")
        rows = reader.top_products(today, 10)
        if rows:
            st.dataframe(
                [
                    {
                        "Product": r.name,
                        "Category": r.category,
                        "Units": r.units,
                        "Orders": r.orders,
                        "Sales": money(r.sales_cents, settings.currency),
                    }
                    for r in rows
                ],
                hide_index=True,
                width="stretch",
            )
        else:
            st.info("No orders today yet.")
    with bottom[1]:
        _freshness(now)


def _kpi_row(kpis: Kpis, currency: str) -> None:
    cur, prev = kpis.current, kpis.previous
    cols = st.columns(4)

    def show(col: int, label: str, value: str, now_v: float | None, before: float | None) -> None:
        with cols[col]:
            delta = change(now_v, before) if prev is not None else None
            help_text = None
            if prev is not None:
                help_text = f"Previous window: {_previous_text(label, prev, currency)}"
            st.metric(label, value, delta=delta, help=help_text)

    avg_now, avg_before = cur.average_order_cents, prev.average_order_cents if prev else None
    show(0, "Sales", money(cur.sales_cents, currency), cur.sales_cents,
         prev.sales_cents if prev else None)  # fmt: skip
    show(1, "Orders", number(cur.orders), cur.orders, prev.orders if prev else None)
    show(2, "Distinct customers", number(cur.customers), cur.customers,
         prev.customers if prev else None)  # fmt: skip
    show(3, "Average order", money(avg_now, currency), avg_now, avg_before)


def _previous_text(label: str, prev: Totals, currency: str) -> str:
    return {
        "Sales": money(prev.sales_cents, currency),
        "Orders": number(prev.orders),
        "Distinct customers": number(prev.customers),
        "Average order": money(prev.average_order_cents, currency),
    }[label]


def _caption(kpis: Kpis, tz: tzinfo) -> None:
    if kpis.span is None or kpis.previous_span is None:
        st.caption("Everything the stream has written, up to the last micro-batch.")
        return
    span, prev = kpis.span, kpis.previous_span
    st.caption(
        f"{local_time(span.start, tz, True)} → {local_time(span.end, tz, True)} "
        f"(complete minutes), compared with {local_time(prev.start, tz, True)} → "
        f"{local_time(prev.end, tz, True)}."
    )


def _freshness(now: datetime) -> None:
    tz = resources.tz()
    fresh = resources.reader().freshness()
    st.subheader("Freshness")
    st.metric("Newest order", local_time(fresh.newest_order_at, tz), help="Its order time")
    s = resources.settings()
    try:
        ends = resources.kafka_end_offsets()(s.orders_topic)
        behind = resources.store().status.query_lag("enrich", s.orders_topic, ends).lag
    except KafkaException:  # Kafka down: say so, keep the page
        behind = None
    st.metric(
        "Waiting in Kafka",
        "unknown" if behind is None else f"{behind:,} records",
        help="Records in the orders topic the enrichment has not read yet",
    )
    st.caption(
        f"Last micro-batch {ago(fresh.last_batch_at, now)}"
        + (
            f", {fresh.last_batch_records:,} records in {fresh.last_batch_s:.2f} s"
            if fresh.last_batch_s is not None
            else ""
        )
    )
