"""The running dashboard (the session stack's service) in a real headless Chromium, behind
sign-in through a real OpenID Connect provider on loopback: signed out, only the sign-in page;
signed in, every page renders, the KPI values in the DOM are the store's, and customers'
e-mails are unmasked only for the e-mail viewers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from playwright.sync_api import Page

from shopstream.config import Settings
from shopstream.dashboard.access import mask_email
from shopstream.dashboard.format import money, number
from shopstream.spikes.detector import run
from shopstream.spikes.rule import Rule
from shopstream.store.ferretdb import open_store
from shopstream.store.protocols import Store
from tests.utils import drop_history, wait_until
from tests.utils.browser import CHROMIUM, browser_page, metrics, screenshot_pages, wait_rendered
from tests.utils.oidc import OTHER, VIEWER, sign_in
from tests.utils.orders import random_orders, write_orders
from tests.utils.spikes import SPIKE_DAY, SPIKER
from tests.utils.spikes import dataset as spike_dataset

pytestmark = [
    pytest.mark.integration,
    # A skip only where chromium is not installed on purpose: `make test` (and CI) install it
    # and run with --no-skips, which turns this skip into a failure.
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"needs chromium at {CHROMIUM} (make test installs it)"
    ),
]


def customer(stack: Settings, customer_id: int) -> tuple[str, str]:
    with psycopg.connect(stack.postgres_url) as conn:
        row = conn.execute(
            "SELECT name, email FROM customers WHERE id = %s", (customer_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def look_up(page: Page, stack: Settings, text: str) -> None:
    page.goto(f"{stack.dashboard_url}/customer")
    wait_rendered(page)
    page.get_by_label("Find a customer").fill(text)
    page.keyboard.press("Enter")
    page.wait_for_selector('[data-testid="stExpander"]', timeout=30_000)


@pytest.fixture
def served(stack: Settings) -> Iterator[Store]:
    """Known orders in the database the stack's dashboard serves."""
    db = open_store(stack, app="shopstream-test")
    zone = stack.clock.zone
    orders = random_orders(stack.clock.now() - timedelta(minutes=1), 500, days=30, seed=9)
    write_orders(db, orders, zone, stack)
    write_orders(db, spike_dataset(ZoneInfo("America/New_York")), zone, stack)
    rule = Rule(lookback_days=30, min_history_days=14, min_orders=0, margin=1.5, weekday=False)
    run(db, SPIKE_DAY, SPIKE_DAY, zone, rule, report=lambda _: None)
    yield db
    db.drop()
    db.close()
    drop_history(stack.postgres_url, stack.mongo_database)


def test_every_page_renders_and_the_kpis_in_the_dom_are_the_stores(
    stack: Settings, served: Store, tmp_path: Path
) -> None:
    assert Path(CHROMIUM).exists(), "no chromium: `make test` installs it (scripts/bootstrap.sh)"
    want = served.rollups.reader(UTC).all_time()
    name, email = customer(stack, 7)
    with browser_page() as page:
        # Signed out: the sign-in page, and nothing of the pages in the DOM.
        page.goto(stack.dashboard_url)
        page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
        dom = page.content()
        assert "Sales" not in dom
        assert "Customer" not in dom  # not even the navigation
        page.goto(f"{stack.dashboard_url}/customer")
        page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
        assert "Find a customer" not in page.content()

        sign_in(page, VIEWER)
        page.goto(stack.dashboard_url)
        wait_rendered(page)
        page.locator("button", has_text="All time").click()

        def shown() -> bool:
            return metrics(page).get("Orders") == number(want.orders)

        wait_until(shown, "the All time KPIs in the browser", timeout=30)
        values = metrics(page)
        assert values["Sales"] == money(want.sales_cents, "USD")
        assert values["Distinct customers"] == number(want.customers)
        assert values["Average order"] == money(want.average_order_cents, "USD")
        assert page.query_selector_all('[data-testid="stVegaLiteChart"]')
        page.goto(f"{stack.dashboard_url}/spikes")
        wait_rendered(page)
        wait_until(lambda: metrics(page).get("Spikes") == "1", "the spike day's metrics")
        # the spike's row (the table's cells are hidden behind its canvas) and its chart
        wait_until(lambda: page.get_by_text(f"Product {SPIKER}").count() > 0, "the spike's row")
        wait_until(
            lambda: bool(page.query_selector_all('[data-testid="stVegaLiteChart"]')),
            "the spike's history chart",
        )
        # The e-mail viewer sees customer 7's address; someone else signed in sees it masked.
        look_up(page, stack, "7")
        wait_until(lambda: email in page.content(), "customer 7's e-mail, unmasked")
    with browser_page() as page:
        page.goto(stack.dashboard_url)
        sign_in(page, OTHER)
        look_up(page, stack, "7")
        wait_until(lambda: mask_email(email) in page.content(), "customer 7's e-mail, masked")
        assert email not in page.content()
        assert name in page.content()
    shots = screenshot_pages(
        stack.dashboard_url,
        tmp_path / "shots",
        customer="7",
        sign_in=lambda page: sign_in(page, VIEWER),
    )
    for shot in shots:
        assert shot.stat().st_size > 20_000, f"{shot.name} looks empty"
