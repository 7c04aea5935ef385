"""Demand spikes: today's emerging (provisional) spikes, and the spikes of any detected day
with each product's daily history against its threshold."""

from __future__ import annotations

from typing import Any

import streamlit as st

from shopstream.dashboard import resources
from shopstream.dashboard.access import viewer
from shopstream.dashboard.charts import spike_chart
from shopstream.dashboard.format import local_time, number
from shopstream.store.errors import StoreUnavailableError
from shopstream.store.records import LABELS, SpikeLabel
from shopstream.store.spike_store import history_points

__all__ = ["render"]

CHARTS = 12  # the strongest spikes of a day get a history chart each


def render() -> None:
    st.title("Demand spikes")
    st.caption(
        "A product spikes on a day when its units exceed the margin times the 95th percentile "
        "of its own daily units over the lookback (zero-filled since its first sale, "
        "weekday-adjusted) and its orders are more than its own day-to-day noise explains. "
        "A day the whole store surges is a store event, and products are judged against "
        "their baseline times the store's level. Detected daily by Airflow once a day is "
        "complete; today's emerging spikes are provisional."
    )

    @st.fragment(run_every=resources.settings().dashboard_refresh_s)
    def live() -> None:
        try:
            _today()
            _detected()
        except StoreUnavailableError as exc:
            st.error(f"MongoDB is not answering ({exc.cause}): is the stack up?")

    live()
    _store_events()


def _today() -> None:
    clock = resources.clock()
    tz, today = clock.zone, clock.today().isoformat()
    st.subheader(f"Today, {today} (provisional)")
    doc = resources.store().spikes.emerging(today)
    every = resources.settings().spike_emerging_every_min
    if doc is None:
        st.info(
            "The intraday check has not run today yet: Airflow's `demand_spike_emerging` DAG "
            f"refreshes it every {every} minutes (or run `shopstream spikes emerging`)."
        )
        return
    above = [s for s in doc.spikes if s["above"]]
    st.caption(
        f"As of {doc.local_time} {tz.key}: units so far against the P95 of the units up to "
        f"the same time on earlier days; refreshed every {every} minutes."
    )
    if not doc.spikes:
        st.success(f"No product is above its usual level so far today (as of {doc.local_time}).")
        return
    st.dataframe(
        [
            {
                "Product": s["name"] or f"#{s['product_id']}",
                "Category": s["category"],
                "Units so far": s["units"],
                "Orders so far": s.get("orders"),
                "Threshold now": round(s["threshold"], 1) if s["threshold"] is not None else None,
                "× P95": _rounded(s["ratio"], 2),
                "Crossed at": local_time(s["crossed_at"], tz)[:5],
                "Still above": "yes" if s["above"] else "no",
            }
            for s in doc.spikes
        ],
        hide_index=True,
        width="stretch",
    )
    st.caption(f"{len(above)} of {len(doc.spikes)} product(s) still above their threshold.")


def _detected() -> None:
    spikes, tz = resources.store().spikes, resources.tz()
    st.subheader("Detected days")
    days = spikes.detected_days()
    if not days:
        st.info(
            "No day has been checked yet: the `demand_spike_detection` DAG runs each day once it "
            "is complete (or run `shopstream spikes run --date YYYY-MM-DD`)."
        )
        return
    day = st.selectbox(
        "Day",
        list(days),
        format_func=lambda d: f"{d} · {days[d]} spike{'s' if days[d] != 1 else ''}",
        key="spike_day",
    )
    found = spikes.spikes_of(day)
    if found is None:
        st.warning(
            f"{day} is listed but its spikes are missing: "
            f"rerun `shopstream spikes run --date {day}`."
        )
        return
    rule = found.rule
    level = found.store.get("level")
    cols = st.columns(5)
    cols[0].metric("Spikes", number(len(found.spikes)))
    cols[1].metric("Products judged", number(found.evaluated))
    cols[2].metric("Rule", f"> {rule.get('margin', 1):g} × P95")
    cols[3].metric("Store level", "–" if level is None else f"× {level:.2f}")
    cols[4].metric("Detected", local_time(found.detected_at, tz, True)[5:16])
    alpha = rule.get("alpha") or 0
    test = f"; orders unlikely under the product's own noise (p < {alpha:g})" if alpha else ""
    st.caption(
        f"Lookback {rule.get('lookback_days')} days; at least {rule.get('min_history_days')} days "
        f"of history, {rule.get('min_units')} units and {rule.get('min_orders', 0)} orders on "
        "the day" + ("; weekday-adjusted baseline" if rule.get("weekday") else "") + test + "."
    )
    if found.store.get("event"):
        st.warning(
            f"**Store event**: the whole store sold × {level:.2f} its usual on {day} (over "
            f"{found.store.get('products_used')} products). Each product was judged against its "
            "baseline times that level, and the day is left out of later baselines."
        )
    if not found.spikes:
        st.success(f"No product spiked on {day}.")
        return
    labels = {lab.product_id: lab for lab in spikes.labels() if lab.day == day}
    st.dataframe(
        [
            {
                "Product": s["name"] or f"#{s['product_id']}",
                "Category": s["category"],
                "Units": s["units"],
                "Orders": s.get("orders"),
                "Expected orders": _rounded(s.get("orders_expected"), 1),
                "P95": round(s["p95"], 1),
                "Threshold": round(s["threshold"], 1),
                "× P95": _rounded(s["ratio"], 2),
                "p": _p_value(s.get("p_value")),
                "History days": s["history_days"],
                "Label": _label_text(labels.get(s["product_id"])),
            }
            for s in found.spikes
        ],
        hide_index=True,
        width="stretch",
    )
    _label_control(day, found.spikes)
    shown = found.spikes[:CHARTS]
    scale = " (on the day's weekday scale)" if rule.get("weekday") else ""
    st.caption(
        f"Daily units before the day (grey) and on it (red); the P95 and the threshold{scale}"
        + (f"; the {CHARTS} strongest spikes:" if len(found.spikes) > CHARTS else ":")
    )
    columns = st.columns(3)
    for i, spike in enumerate(shown):
        with columns[i % 3]:
            st.markdown(
                f"**{spike['name'] or '#' + str(spike['product_id'])}** · {spike['category']}"
            )
            st.altair_chart(
                spike_chart(history_points(spike), spike["threshold"], spike["p95"]),
                width="stretch",
            )


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _p_value(value: float | None) -> str:
    """How unlikely the day's orders were under the product's own noise, readable (`3e-13`)."""
    return "" if value is None else f"{value:.1g}"


def _label_text(label: SpikeLabel | None) -> str:
    if label is None:
        return ""
    return label.label + (f" ({label.note})" if label.note else "")


def _label_control(day: str, found: list[dict[str, Any]]) -> None:
    """Mark one of the day's spikes expected (a promotion, a known event: left out of the
    product's later baselines) or wrong (a false alarm), or clear its label. Saved by the
    button's callback, which runs before the page is drawn again: the table shows it."""
    with st.expander("Label a spike"), st.form(f"label_{day}"):
        names = {s["product_id"]: s["name"] or f"#{s['product_id']}" for s in found}
        st.selectbox("Product", list(names), format_func=lambda p: names[p], key="label_product")
        st.radio(
            "Label",
            [*LABELS, "clear"],
            horizontal=True,
            key="label_kind",
            captions=["a promotion, a known event", "not a real spike", "remove the label"],
        )
        st.text_input("Note", key="label_note", placeholder="e.g. newsletter promotion")
        st.form_submit_button("Save label", on_click=_save_label, args=(day,))


def _save_label(day: str) -> None:
    state = st.session_state
    label = state["label_kind"]
    resources.store().spikes.set_label(
        day,
        int(state["label_product"]),
        None if label == "clear" else label,
        note=state["label_note"],
        by=viewer().email or "dashboard",
        at=resources.clock().now(),
    )
    state["label_note"] = ""


def _store_events() -> None:
    try:
        events = resources.store().spikes.store_events()
    except StoreUnavailableError:
        return  # the live part says so
    if not events:
        return
    st.subheader("Store events")
    st.caption(
        "Days the whole store sold well above its usual (a sale, a holiday): reported once "
        "here rather than as a spike of every product, and left out of later baselines."
    )
    st.dataframe(
        [{"Day": d, "Store level": f"× {level:.2f}"} for d, level in reversed(events.items())],
        hide_index=True,
        width="content",
    )
