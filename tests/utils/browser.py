"""Drive the running dashboard in headless Chromium (Debian's, through Playwright), read what
it shows and take screenshots.

`python -m tests.utils.browser URL DIR` screenshots every page of a running dashboard into DIR
(`make screenshots` does it for the docs, against `make demo`'s dashboard).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

__all__ = ["CHROMIUM", "browser_page", "metrics", "screenshot_pages", "wait_rendered"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# name -> URL path
PAGES = {
    "overview": "",
    "customer": "customer",
    "spikes": "spikes",
    "history": "history",
    "health": "health",
}


@contextmanager
def browser_page(width: int = 1440, height: int = 1100) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def wait_rendered(page: Page, timeout_ms: float = 30_000) -> None:
    """Until Streamlit has run the page's script and drawn it (no spinner, no skeleton)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const status = document.querySelector('[data-testid="stStatusWidget"]');
            const skeleton = document.querySelector('[data-testid="stSkeleton"]');
            const main = document.querySelector('[data-testid="stMain"]');
            return !status && !skeleton && main && main.innerText.length > 20;
        }""",
        timeout=timeout_ms,
    )


def metrics(page: Page) -> dict[str, str]:
    """Each `st.metric` on the page: label -> value, as the browser shows them."""
    out: dict[str, str] = {}
    for metric in page.query_selector_all('[data-testid="stMetric"]'):
        label = metric.query_selector('[data-testid="stMetricLabel"]')
        value = metric.query_selector('[data-testid="stMetricValue"]')
        if label and value:
            out[label.inner_text().strip()] = value.inner_text().strip()
    return out


def screenshot_pages(
    url: str,
    out: Path,
    customer: str = "1",
    window: str = "Last hour",
    sign_in: Callable[[Page], None] | None = None,
) -> list[Path]:
    """A full-page screenshot of each page (the Overview at `window`, the Customer page with
    `customer` looked up); `sign_in` first, from the sign-in page, when the dashboard has one."""
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with browser_page() as page:
        if sign_in is not None:
            page.goto(url)
            sign_in(page)
        for name, path in PAGES.items():
            page.goto(f"{url}/{path}")
            wait_rendered(page)
            if name == "customer":
                page.get_by_label("Find a customer").fill(customer)
                page.keyboard.press("Enter")
                page.wait_for_selector('[data-testid="stExpander"]', timeout=30_000)
                wait_rendered(page)
            if name == "overview":
                page.locator("button", has_text=window).click()
                page.wait_for_timeout(1000)
                wait_rendered(page)
                page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=30_000)
                page.wait_for_timeout(1500)  # the charts' own rendering
            if name == "history":  # its body: the marts, or what loads them
                page.wait_for_selector(
                    '[data-testid="stMetric"], [data-testid="stAlert"]', timeout=30_000
                )
                wait_rendered(page)
            if name in ("health", "spikes", "history"):
                page.wait_for_timeout(1500)
            target = out / f"{name}.png"
            page.screenshot(path=str(target), full_page=True)
            shots.append(target)
    return shots


if __name__ == "__main__":
    for shot in screenshot_pages(sys.argv[1], Path(sys.argv[2])):
        print(shot)
