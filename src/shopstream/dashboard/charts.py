"""The dashboard's charts (Altair / Vega-Lite), from pre-aggregated buckets only.

The newest bucket is still filling: its segment of each line is drawn dashed, and its point
hollow, so that a partial bucket is not read as a drop.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

import altair as alt
import pandas as pd

from shopstream.store.rollup_reader import Trend

__all__ = ["category_chart", "history_chart", "latency_chart", "orders_chart", "spike_chart"]

_TIME_FORMAT = {"minute": "%H:%M", "hour": "%a %H:%M", "day": "%b %d"}
_STEP = {"minute": "minute", "hour": "hour", "day": "day"}


def _frame(trend: Trend, series: dict[str, list[float]], tz: tzinfo) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    last = trend.filling
    for name, values in series.items():
        for i, (start, value) in enumerate(zip(trend.starts, values, strict=True)):
            local = start.astimezone(tz).replace(tzinfo=None)  # Vega-Lite shows it as is
            # Every point is in the "complete" line but the filling one; the last two points
            # also form the dashed "filling" segment.
            if i < last:
                rows.append({"series": name, "at": local, "value": value, "part": "complete"})
            if i >= last - 1:
                rows.append({"series": name, "at": local, "value": value, "part": "filling"})
    return pd.DataFrame(rows, columns=["series", "at", "value", "part"])


def _lines(
    frame: pd.DataFrame, trend: Trend, y_title: str, y_format: str, color: alt.Color | None
) -> alt.LayerChart:
    axis = alt.Axis(format=_TIME_FORMAT[trend.granularity], labelAngle=0, title=None)
    x = alt.X("at:T", axis=axis)
    y = alt.Y("value:Q", title=y_title, axis=alt.Axis(format=y_format))
    tooltip = [
        alt.Tooltip("series:N", title="Series"),
        alt.Tooltip("at:T", title=f"{trend.granularity.capitalize()} starting",
                    format="%Y-%m-%d %H:%M"),
        alt.Tooltip("value:Q", title=y_title, format=y_format),
    ]  # fmt: skip
    encode: dict[str, Any] = {"x": x, "y": y, "tooltip": tooltip}
    if color is not None:
        encode["color"] = color
    base = alt.Chart(frame).encode(**encode)
    complete = base.transform_filter(alt.datum.part == "complete").mark_line(point=True)
    filling = base.transform_filter(alt.datum.part == "filling").mark_line(
        strokeDash=[5, 4], point=alt.OverlayMarkDef(filled=False, fill="white")
    )
    return alt.LayerChart(layer=[complete, filling], height=280)


def orders_chart(trend: Trend, tz: tzinfo) -> alt.LayerChart:
    """Orders per bucket."""
    frame = _frame(trend, {"Orders": [float(v) for v in trend.orders]}, tz)
    return _lines(frame, trend, f"Orders per {trend.granularity}", ",.0f", None)


def category_chart(trend: Trend, tz: tzinfo, currency: str) -> alt.LayerChart:
    """Sales per bucket for each top category (and the rest as Other)."""
    series = {name: [c / 100 for c in cents] for name, cents in trend.categories.items()}
    frame = _frame(trend, series, tz)
    order = list(trend.categories)
    color = alt.Color("series:N", title="Category", sort=order, scale=alt.Scale(domain=order))
    return _lines(frame, trend, f"Sales per {trend.granularity} ({currency})", ",.2f", color)


def latency_chart(recent: list[dict[str, Any]], tz: tzinfo) -> alt.Chart:
    """End-to-end latency (Kafka to MongoDB) of the last batches: p50 and p95."""
    rows = [
        {"at": r["at"].astimezone(tz).replace(tzinfo=None), "series": name, "seconds": r[key]}
        for r in recent
        for name, key in (("p50", "e2e_p50_s"), ("p95", "e2e_p95_s"))
        if r.get(key) is not None
    ]
    frame = pd.DataFrame(rows, columns=["at", "series", "seconds"])
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("at:T", axis=alt.Axis(format="%H:%M:%S", title=None)),
            y=alt.Y("seconds:Q", title="Kafka → MongoDB (s)"),
            color=alt.Color("series:N", title="Latency"),
            tooltip=[
                alt.Tooltip("at:T", title="Batch at", format="%H:%M:%S"),
                alt.Tooltip("series:N", title="Percentile"),
                alt.Tooltip("seconds:Q", title="Seconds", format=".2f"),
            ],
        )
        .properties(height=220)
    )


def spike_chart(points: list[dict[str, Any]], threshold: float, p95: float) -> alt.LayerChart:
    """A product's daily units (the spike day in red) with its P95 and threshold marked."""
    frame = pd.DataFrame(points, columns=["day", "units", "kind"])
    frame["day"] = pd.to_datetime(frame["day"])
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("day:T", axis=alt.Axis(format="%b %d", title=None, labelAngle=0)),
            y=alt.Y("units:Q", title="Units"),
            color=alt.Color(
                "kind:N",
                scale=alt.Scale(domain=["history", "day"], range=["#9aa5b1", "#d62728"]),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("day:T", title="Day", format="%a %Y-%m-%d"),
                alt.Tooltip("units:Q", title="Units"),
            ],
        )
    )
    marks = pd.DataFrame([{"value": p95, "what": "P95"}, {"value": threshold, "what": "threshold"}])
    rules = (
        alt.Chart(marks)
        .mark_rule(strokeDash=[4, 3])
        .encode(
            y="value:Q",
            color=alt.Color(
                "what:N",
                scale=alt.Scale(domain=["P95", "threshold"], range=["#1f77b4", "#ff7f0e"]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=[alt.Tooltip("what:N", title=""), alt.Tooltip("value:Q", format=",.1f")],
        )
    )
    return alt.LayerChart(layer=[bars, rules], height=160)


def history_chart(frame: pd.DataFrame, currency: str) -> alt.Chart:
    """Daily revenue per category (lines), from the warehouse's daily_category_sales mart."""
    data = frame.assign(order_date=pd.to_datetime(frame["order_date"]))
    data["revenue"] = data["revenue"].astype(float)
    return (
        alt.Chart(data)
        .mark_line(point=alt.OverlayMarkDef(size=18), strokeWidth=2)
        .encode(
            x=alt.X(
                "yearmonthdate(order_date):T",
                axis=alt.Axis(format="%b %d", title=None, labelAngle=0, tickCount="day"),
            ),
            y=alt.Y("revenue:Q", title=f"Revenue ({currency})", axis=alt.Axis(format="~s")),
            color=alt.Color("category:N", legend=alt.Legend(title=None, orient="top")),
            tooltip=[
                alt.Tooltip("order_date:T", title="Day", format="%a %Y-%m-%d"),
                alt.Tooltip("category:N", title="Category"),
                alt.Tooltip("revenue:Q", title="Revenue", format=",.2f"),
                alt.Tooltip("orders:Q", title="Orders", format=","),
                alt.Tooltip("units:Q", title="Units", format=","),
            ],
        )
        .properties(height=320)
    )
