"""Each dashboard page, run by Streamlit's AppTest against the real store: with data (its
numbers match the orders) and empty (its empty states say so)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from shopstream.config import Settings, settings_env
from shopstream.dashboard import APP_PATH
from shopstream.dashboard.format import change, money, number
from shopstream.domain.rollups import dead_letter_deltas
from shopstream.domain.windows import spans
from shopstream.spikes.detector import run as detect
from shopstream.spikes.intraday import refresh
from shopstream.spikes.rule import Rule
from shopstream.store.ferretdb import open_store
from shopstream.store.protocols import Store
from tests.utils import drop_history
from tests.utils.dates import HARD, Instant
from tests.utils.oidc import VIEWER
from tests.utils.orders import expected, order_doc, random_orders, write_orders
from tests.utils.spikes import SPIKE_DAY, SPIKER
from tests.utils.spikes import dataset as spike_dataset

pytestmark = pytest.mark.integration

# The overview's "today" at the hard instants where it is hardest: the first minute of a year,
# a 25-hour day, a day that began at 01:00.
OVERVIEW_AT = ("new-year-2359", "berlin-dst-end", "sao-paulo-midnight-gap", "after-leap-day")


def overview_page() -> None:
    from shopstream.dashboard.views import overview

    overview.render()


def customer_page() -> None:
    from shopstream.dashboard.views import customer

    customer.render()


def spikes_page() -> None:
    from shopstream.dashboard.views import spikes

    spikes.render()


def health_page() -> None:
    from shopstream.dashboard.views import health

    health.render()


@pytest.fixture
def instant() -> Instant | None:
    """The moment the pages run at: the real clock, unless a test pins one of HARD."""
    return None


@pytest.fixture
def page_settings(stack: Settings, instant: Instant | None) -> Settings:
    """The session stack's settings with a database of its own (and the pinned clock)."""
    update: dict[str, Any] = {"mongo_database": f"it_pages_{uuid.uuid4().hex[:8]}"}
    if instant is not None:
        update |= {"business_timezone": instant.zone, "clock_frozen_at": instant.at}
    return stack.model_copy(update=update)


@pytest.fixture
def store(page_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A fresh database of the session stack, and the dashboard's settings pointing at it."""
    settings = page_settings
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    st.cache_data.clear()
    store = open_store(settings, app="shopstream-test")
    yield store
    store.drop()
    store.close()
    drop_history(settings.postgres_url, settings.mongo_database)
    st.cache_resource.clear()


def run(page: Any) -> AppTest:
    at = AppTest.from_function(page, default_timeout=30)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize("instant", [None, *(i for i in HARD if i.name in OVERVIEW_AT)], ids=str)
def test_overview_shows_each_windows_numbers_as_the_orders_give_them(
    store: Store, page_settings: Settings
) -> None:
    clock = page_settings.clock
    now, tz = clock.now(), clock.zone
    orders = random_orders(now - timedelta(minutes=2), 400, days=20, seed=3)
    write_orders(store, orders, tz, page_settings)
    at = run(overview_page)
    at.segmented_control(key="overview_window").set_value("all").run()
    shown = metrics(at)
    everything = expected(orders, now - timedelta(days=400), now + timedelta(days=1))
    assert shown["Orders"] == number(everything.orders)
    assert shown["Sales"] == money(everything.sales_cents, "USD")
    assert shown["Distinct customers"] == number(everything.customers)
    assert shown["Average order"] == money(everything.sales_cents / everything.orders, "USD")
    # "Today" against yesterday, each counted order by order over the window the clock gives
    # (a real clock's minute may turn during the run: either side of it is right).
    at.segmented_control(key="overview_window").set_value("today").run()
    shown = metrics(at)
    answers = []
    for moment in {now, clock.now()}:
        current, previous = spans("today", moment, tz)
        assert current is not None
        assert previous is not None
        today = expected(orders, current.start, current.end).orders
        yesterday = expected(orders, previous.start, previous.end).orders
        answers.append((number(today), change(today, yesterday)))
    delta = next(m.delta for m in at.metric if m.label == "Orders")
    assert (shown["Orders"], delta) in answers
    # Top products of the business day, counted order by order (none in its first minute).
    today_products = {
        i["product_id"] for o in orders if clock.day_of(o["created_at"]) == clock.today()
        for i in o["items"]
    }  # fmt: skip
    if today_products:
        assert len(at.get("vega_lite_chart")) == 2
        (products,) = at.dataframe
        assert len(products.value) == min(10, len(today_products))
    else:
        assert not at.dataframe
        assert "No orders today yet." in [i.value for i in at.info]


def test_overview_of_an_empty_store_says_there_is_nothing_yet(
    store: Store,
) -> None:
    at = run(overview_page)
    shown = metrics(at)
    assert (shown["Orders"], shown["Sales"], shown["Average order"]) == ("0", "$0.00", "–")
    assert [i.value for i in at.info] == ["No sales in this window yet.", "No orders today yet."]
    assert shown["Newest order"] == "–"


def test_the_customer_page_finds_a_customer_and_pages_through_their_orders(
    store: Store, page_settings: Settings
) -> None:
    now = page_settings.clock.now()
    orders = random_orders(now, 600, days=60, seed=4)
    orders += [order_doc(7, now - timedelta(hours=5 * i), [(i + 1, 1, 500 + i)]) for i in range(15)]
    write_orders(store, orders, ZoneInfo("UTC"), page_settings)
    mine = [o for o in orders if o["customer"]["id"] == 7]
    assert len(mine) > 10
    at = run(customer_page)
    assert at.info[0].value.startswith("Type a customer id")
    at.text_input(key="customer_query").set_value("7").run()
    assert at.selectbox(key="customer_choice").value == 7
    shown = metrics(at)
    assert shown["Lifetime orders"] == number(len(mine))
    spend = sum(round(i["line_total"] * 100) for o in mine for i in o["items"])
    assert shown["Lifetime spend"] == money(spend, "USD")
    assert len(at.expander) == 10
    pages = -(-len(mine) // 10)
    assert at.markdown[-1].value == f"Page 1 of {pages}"
    at.button(key="older_7").click().run()
    assert at.markdown[-1].value == f"Page 2 of {pages}"


def test_the_customer_page_says_no_match_and_no_orders_yet(
    store: Store,
) -> None:
    at = run(customer_page)
    at.text_input(key="customer_query").set_value('{"$ne": null}').run()
    assert at.warning[0].value.startswith("No customer has the id")
    at.text_input(key="customer_query").set_value("12").run()
    assert at.info[-1].value.endswith("has no orders yet.")


def test_pipeline_health_shows_services_batches_and_dead_letters(
    store: Store, page_settings: Settings
) -> None:
    at = run(health_page)
    assert "The streaming job has not written a batch with records yet." in [
        i.value for i in at.info
    ]
    assert at.success[0].value.startswith("No dead letters")
    services = at.dataframe[0].value
    assert set(services["State"]) == {"running"}
    assert len(services) >= 4  # PostgreSQL, Kafka, the MongoDB role, the API (and more)

    now = page_settings.clock.now()
    dead = [{"reason": "unknown_product"}] * 3 + [{"reason": "malformed_json"}]
    store.rollups.writer().apply("t:1", dead_letter_deltas(dead, {}))
    # a batch of 42 records, 40 new orders, 2 dead letters; e2e p50 0.4 s and p95 0.9 s
    batch = SimpleNamespace(records=42, new=40, dead=2, newest=now, latencies=[0.4] * 19 + [0.9])
    store.status.recorder().status("q", 1, batch, 0.31)
    at = run(health_page)
    reasons = at.dataframe[1].value
    assert dict(zip(reasons["Reason"], reasons["Received"], strict=True)) == {
        "malformed_json": "1",
        "unknown_product": "3",
    }
    assert "shopstream dlq replay" in at.code[0].value
    assert "p50 **0.40 s**, p95 **0.90 s**" in " ".join(m.value for m in at.markdown)


def test_the_app_asks_for_sign_in_then_opens_on_the_overview(store: Store) -> None:
    at = AppTest.from_file(str(APP_PATH), default_timeout=30)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric  # no page ran
    at.user = {"is_logged_in": True, "email": VIEWER}
    at.run()
    assert not at.exception
    assert at.title[0].value == "Overview"
    assert f"Signed in as **{VIEWER}**" in [c.value for c in at.sidebar.caption]


# five days after the dataset's last (2026-10-10), at noon: today's lookback reaches its days
# on any date the suite runs, and a minute ago is today in any time zone
AFTER_THE_DATASET = Instant("after the spike dataset", "2026-10-15T12:00:00", "UTC")


@pytest.mark.parametrize("instant", [AFTER_THE_DATASET], ids=str)
def test_the_spikes_page_shows_detected_days_and_todays_emerging_spikes(
    store: Store, page_settings: Settings
) -> None:
    new_york = ZoneInfo("America/New_York")
    utc = ZoneInfo("UTC")
    write_orders(store, spike_dataset(new_york), utc, page_settings)
    rule = Rule(lookback_days=30, min_history_days=14, min_orders=0, margin=1.5, weekday=False)
    before = SPIKE_DAY - timedelta(days=1)
    detect(store, before, SPIKE_DAY, utc, rule, report=lambda _: None)
    now = page_settings.clock.now()
    rush = [order_doc(9 + i, now - timedelta(minutes=1), [(4, 5, 1000)]) for i in range(40)]
    write_orders(store, rush, utc, page_settings)  # 40 buyers of product 4 this minute
    # today's window reaches back to the dataset's (loaded) days
    refresh(store, now, utc, Rule(**{**rule.as_document(), "lookback_days": 120}))

    at = run(spikes_page)
    assert at.title[0].value == "Demand spikes"
    today = at.dataframe[0].value
    assert list(today["Product"]) == ["Product 4"]
    assert list(today["Units so far"]) == [200]
    assert list(today["Orders so far"]) == [40]
    assert list(today["Still above"]) == ["yes"]
    picker = at.selectbox(key="spike_day")
    assert picker.options == [f"{SPIKE_DAY} · 1 spike", f"{before} · 0 spikes"]
    assert metrics(at)["Spikes"] == "1"
    day = at.dataframe[1].value
    assert list(day["Product"]) == [f"Product {SPIKER}"]
    assert int(day["Units"].iloc[0]) > 40  # most of the 60 fall on the UTC day
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # its history chart
    assert list(day["Label"]) == [""]
    assert not at.warning  # not a store event (and the page says why it would be)
    # a user labels it expected from the page: stored, shown, and clearable
    at.selectbox(key="label_product").set_value(SPIKER)
    at.radio(key="label_kind").set_value("expected")
    at.text_input(key="label_note").set_value("newsletter")
    next(b for b in at.button if b.label == "Save label").click().run()
    assert not at.exception
    [label] = store.spikes.labels()
    assert (label.day, label.product_id, label.label, label.note) == (
        str(SPIKE_DAY), SPIKER, "expected", "newsletter",
    )  # fmt: skip
    assert label.by == "dashboard"  # no sign-in here
    assert list(at.dataframe[1].value["Label"]) == ["expected (newsletter)"]
    store.spikes.set_label(str(SPIKE_DAY), SPIKER, None)
    assert store.spikes.labels() == []
    picker.set_value(str(before)).run()
    assert metrics(at)["Spikes"] == "0"
    assert any(f"No product spiked on {before}" in s.value for s in at.success)


def test_the_spikes_page_of_an_empty_store_says_what_runs_it(
    store: Store,
) -> None:
    at = run(spikes_page)
    infos = " ".join(i.value for i in at.info)
    assert "demand_spike_emerging" in infos
    assert "demand_spike_detection" in infos
    assert not at.dataframe


def history_page() -> None:
    from shopstream.dashboard.views import history

    history.render()


def test_the_history_page_before_any_load_says_what_loads_it(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPSTREAM_WAREHOUSE_DUCKDB_PATH", str(tmp_path / "none.duckdb"))
    st.cache_resource.clear()
    at = run(history_page)
    assert at.title[0].value == "History"
    assert "lake_to_warehouse" in " ".join(i.value for i in at.info)
    assert not at.dataframe
