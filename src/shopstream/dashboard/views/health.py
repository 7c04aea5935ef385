"""Pipeline health: services, stream lag, the last micro-batches, dead letters, spike alerts'
delivery, the lake, the API's request rates."""

from __future__ import annotations

from datetime import datetime

import httpx
import streamlit as st
from confluent_kafka import KafkaException

from shopstream.dashboard import resources
from shopstream.dashboard.charts import latency_chart
from shopstream.dashboard.format import ago, local_time, number
from shopstream.dashboard.health_checks import QUERIES, REPLAY_COMMAND, lake_state
from shopstream.stack.manager import status
from shopstream.store.errors import StoreUnavailableError
from shopstream.streaming.committed import committed_files, compacted_days, read_watermark

__all__ = ["render"]


def render() -> None:
    st.title("Pipeline health")

    @st.fragment(run_every=resources.settings().dashboard_refresh_s)
    def live() -> None:
        now = resources.clock().now()
        _services()
        try:
            _stream(now)
            _dead_letters()
            _spike_alerts(now)
        except StoreUnavailableError as exc:
            st.error(f"MongoDB is not answering ({exc.cause}): is the stack up?")
        _lake()
        _api()

    live()


@st.cache_data(ttl=10, show_spinner=False)
def _service_rows() -> list[dict[str, str]]:

    return [
        {
            "Service": s.title,
            "State": s.state,
            "Address": s.address,
            "Detail": s.detail,
        }
        for s in status(resources.settings())
    ]


def _services() -> None:
    st.subheader("Services")
    st.dataframe(_service_rows(), hide_index=True, width="stretch")


def _stream(now: datetime) -> None:
    settings, tz, status = resources.settings(), resources.tz(), resources.store().status
    st.subheader("Stream")
    try:
        ends: dict[str, int] | None = resources.kafka_end_offsets()(settings.orders_topic)
    except KafkaException as exc:
        ends = None
        st.warning(f"Kafka's end offsets are unavailable ({exc}); lag unknown.")
    cols = st.columns(len(QUERIES) + 1)
    for col, name in zip(cols, QUERIES, strict=False):
        lag = status.query_lag(name, settings.orders_topic, ends)
        col.metric(
            f"Lag of `{name}`",
            "unknown" if lag.lag is None else f"{lag.lag:,} records",
            help="Kafka end offsets minus the offsets the query has read up to",
        )
        col.caption(
            f"batch {lag.batch_id if lag.batch_id is not None else '–'}, "
            f"{ago(lag.trigger_at, now)}, {lag.input_rows:,} rows in {lag.duration_ms} ms"
        )
    batches = status.last_batches()
    cols[-1].metric(
        "Last micro-batch",
        ago(batches.finished_at, now),
        help=f"Finished at {local_time(batches.finished_at, tz, True)}",
    )
    cols[-1].caption(
        f"{batches.records:,} records, {batches.new_orders:,} new orders, "
        f"{batches.dead_letters:,} dead letters"
        + (f", {batches.duration_s:.2f} s" if batches.duration_s is not None else "")
    )
    if batches.recent:
        last = batches.recent[-1]
        p50, p95 = last.get("e2e_p50_s") or 0.0, last.get("e2e_p95_s") or 0.0
        st.markdown(
            f"End-to-end latency (Kafka → MongoDB) of the last batch: "
            f"p50 **{p50:.2f} s**, p95 **{p95:.2f} s**"
        )
        st.altair_chart(latency_chart(batches.recent, tz), width="stretch")
    else:
        st.info("The streaming job has not written a batch with records yet.")


def _dead_letters() -> None:
    st.subheader("Dead letters")
    by_reason = resources.store().status.dead_letter_counts()
    if not by_reason:
        st.success("No dead letters: every record so far became an order.")
        return
    st.dataframe(
        [{"Reason": r, "Received": number(n)} for r, n in sorted(by_reason.items())],
        hide_index=True,
    )
    st.markdown(
        "`shopstream dlq list` shows which are still waiting. Those whose customer or product "
        "now exists can be replayed:"
    )
    st.code(f"{REPLAY_COMMAND}            # add --dry-run to see what it would do", "bash")


def _spike_alerts(now: datetime) -> None:
    """The spike webhook's deliveries (never its URL: a Slack webhook's holds its token)."""
    st.subheader("Spike alerts")
    settings, tz = resources.settings(), resources.tz()
    if settings.spike_webhook_url is None:
        st.info("Spike alerts: none configured (SHOPSTREAM_SPIKE_WEBHOOK_URL).")
        return
    state = resources.store().alerts.status()
    cols = st.columns(3)
    cols[0].metric("Webhook", f"configured ({settings.spike_webhook_format})")
    cols[1].metric(
        "Last delivery",
        ago(state.last_delivered_at, now),
        help=f"At {local_time(state.last_delivered_at, tz, True)}",
    )
    cols[2].metric(
        "Undelivered alerts",
        number(state.pending),
        help="Not delivered yet: every spike run posts them again while their day is recent",
    )
    if state.pending:
        st.warning(
            f"{state.pending} spike alert(s) not delivered; last error "
            f"{ago(state.last_error_at, now)}: {state.last_error}. The next spike run retries "
            f"them (the intraday one every {settings.spike_emerging_every_min} minutes)."
        )
    elif state.last_attempt_at is None:
        st.caption("No spike alert has been posted yet.")
    if state.expired:
        st.caption(
            f"{state.expired} alert(s) were never delivered and are no longer retried: their "
            "day left the alert window (SHOPSTREAM_SPIKE_WEBHOOK_MAX_AGE_DAYS)."
        )


@st.cache_data(ttl=30, show_spinner=False)
def _lake_rows() -> tuple[int, list[str], str | None, str | None]:

    settings = resources.settings()
    table = f"{settings.lake}/orders"
    state = lake_state(
        lambda: committed_files(table, None, settings),
        lambda: read_watermark(table, settings),
        lambda: compacted_days(table, settings),
    )
    return state.files, state.days, state.complete_through, state.watermark


def _lake() -> None:
    st.subheader("Lake")
    try:
        files, days, complete, watermark = _lake_rows()
    except OSError as exc:
        st.warning(f"The lake at {resources.settings().lake} cannot be read: {exc}")
        return
    cols = st.columns(3)
    cols[0].metric(
        "Files in the log",
        number(files),
        help="The raw files Spark's log names: the last SHOPSTREAM_LAKE_LOG_RETENTION_HOURS "
        "of writes. Older days are read through their compaction manifests.",
    )
    cols[1].metric("Days", f"{days[0]} → {days[-1]}" if days else "–")
    cols[2].metric("Complete through", complete or "–", help=f"Watermark {watermark or '–'}")


def _api() -> None:
    st.subheader("Ingestion API")
    try:
        rates = resources.api_rates().sample()
    except httpx.HTTPError as exc:
        st.warning(f"The API's /metrics is unavailable ({exc}).")
        return
    if rates is None:
        st.caption("Measuring request rates (two samples needed)…")
        return
    requests, orders = rates
    total = sum(requests.values())
    errors = requests.get("5xx", 0.0)
    cols = st.columns(4)
    cols[0].metric("Requests/s", f"{total:,.1f}")
    cols[1].metric("Client errors/s (4xx)", f"{requests.get('4xx', 0.0):,.1f}")
    cols[2].metric("Server errors/s (5xx)", f"{errors:,.1f}")
    cols[3].metric("Orders accepted/s", f"{orders.get('accepted', 0.0):,.1f}")
