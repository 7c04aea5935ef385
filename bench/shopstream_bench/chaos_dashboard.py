"""The dashboard as a person sees it through a fault: one headless Chromium tab (Debian's,
through Playwright) opened once on a page and never reloaded or navigated, its DOM read every
`interval_s` in a thread of its own. Each sample says whether the page shows the store's
"is not answering" error and how many KPI tiles (`st.metric`) it shows; the scenario reads
from them when the error came and when it went.

Playwright's sync objects belong to the thread that made them: the thread creates the
browser, the page and everything else, and nothing else touches them.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import sync_playwright

__all__ = ["STACK_SETTINGS", "DashboardWatch", "Sample"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
UNAVAILABLE_TEXT = "is not answering"  # the views' st.error for StoreUnavailableError
# The dashboard of a throw-away stack: on loopback, synthetic data, so served without sign-in
# as in `dev` (whatever the caller's environment configures), refreshing at the default 5 s.
STACK_SETTINGS: dict[str, Any] = {
    "dashboard_enabled": True,
    "dashboard_refresh_s": 5.0,
    "environment": "dev",
    "dashboard_oidc_metadata_url": None,
    "dashboard_oidc_client_id": None,
    "dashboard_oidc_client_secret": None,
    "dashboard_public_url": None,
}
_STATE_JS = """(text) => {
    const main = document.querySelector('[data-testid="stMain"]') || document.body;
    return {
        error: main.innerText.includes(text),
        metrics: main.querySelectorAll('[data-testid="stMetric"]').length,
        marker: window.__chaos_marker === 1,
    };
}"""


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    error: bool  # the "is not answering" error is shown
    metrics: int  # st.metric tiles shown
    marker: bool  # the marker set after the first load is still there (no reload)

    @property
    def healthy(self) -> bool:
        return not self.error and self.metrics > 0


class DashboardWatch:
    """`url` in one tab, sampled every `interval_s` until `stop()`; `start()` returns once the
    page shows its KPIs, or with `failure` set."""

    def __init__(self, url: str, interval_s: float = 0.5, load_timeout_s: float = 90.0) -> None:
        self.url = url
        self.interval_s = interval_s
        self.load_timeout_s = load_timeout_s
        self.samples: list[Sample] = []
        self.loads = 0  # the page's `load` events: 1 unless it reloaded
        self.failure: str | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-dashboard", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(self.load_timeout_s + 60):
            self.failure = f"no KPIs within {self.load_timeout_s + 60:.0f} s"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def first(self, after: float, check: Callable[[Sample], bool]) -> Sample | None:
        """The first sample taken at `after` or later for which `check` holds."""
        return next((s for s in list(self.samples) if s.at >= after and check(s)), None)

    def timeline(self, origin: float) -> str:
        """What the page showed, each change once: "+5.1 s error, 0 KPIs" (from `origin`)."""
        changes, last = [], None
        for s in list(self.samples):
            shown = ("error, " if s.error else "") + f"{s.metrics} KPIs"
            if shown != last:
                changes.append(f"{s.at - origin:+.1f} s {shown}")
                last = shown
        return "; ".join(changes)

    @property
    def reloaded(self) -> bool:
        return self.loads > 1 or any(not s.marker for s in list(self.samples))

    def _run(self) -> None:
        try:
            self._watch()
        except Exception as exc:  # the scenario reports it
            self.failure = f"{type(exc).__name__}: {exc}"
        finally:
            self._ready.set()

    def _watch(self) -> None:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 1100})
                page.on("load", lambda _: setattr(self, "loads", self.loads + 1))
                page.goto(self.url)
                page.wait_for_selector(
                    '[data-testid="stMetric"]', timeout=self.load_timeout_s * 1000
                )
                page.evaluate("() => { window.__chaos_marker = 1; }")
                self._ready.set()
                while not self._stop.wait(self.interval_s):
                    state = page.evaluate(_STATE_JS, UNAVAILABLE_TEXT)
                    self.samples.append(
                        Sample(time.monotonic(), state["error"], state["metrics"], state["marker"])
                    )
            finally:
                browser.close()
