"""The dashboard's memory over a long auto-refresh: one headless Chromium tab on a page, the
Streamlit server's RSS sampled every interval. Flat when the RSS after the first 5 minutes
grows by at most 10 % (Streamlit has had leaks here: issues #4852, #6510)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import sync_playwright

from shopstream.config import Settings
from shopstream.stack.supervisor import Supervisor
from shopstream_bench.soak import rss_mb

__all__ = ["run_dashboard_soak", "verdict"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def dashboard_pid(settings: Settings) -> int:
    info = Supervisor(settings.data_path).processes().get("dashboard")
    if not info or not info.get("pid"):
        raise RuntimeError("no dashboard is running under this stack's supervisor (shopstream up)")
    return int(info["pid"])


def verdict(samples: list[dict[str, Any]], settle_s: float = 300.0) -> dict[str, Any]:
    after = [s for s in samples if s["elapsed_s"] >= settle_s]
    if len(after) < 2:
        return {"flat": None, "why": "too short: fewer than two samples after the first 5 min"}
    base, last = after[0]["rss_mb"], after[-1]["rss_mb"]
    peak = max(s["rss_mb"] for s in after)
    growth = (last - base) / base * 100
    return {
        "rss_after_5_min_mb": base,
        "rss_end_mb": last,
        "rss_peak_mb": peak,
        "growth_pct": round(growth, 1),
        "flat": growth <= 10.0,
    }


def run_dashboard_soak(
    settings: Settings,
    minutes: float,
    interval_s: float,
    page_path: str,
    report: Callable[[str], None],
) -> dict[str, Any]:
    pid = dashboard_pid(settings)
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        page.goto(f"{settings.dashboard_url}/{page_path}")
        page.wait_for_selector('[data-testid="stMetric"]', timeout=60_000)
        while (elapsed := time.monotonic() - started) < minutes * 60:
            rss = rss_mb(pid)
            metric = page.query_selector('[data-testid="stMetricValue"]')
            samples.append({
                "elapsed_s": round(elapsed, 1),
                "at": datetime.now(UTC).isoformat(),
                "rss_mb": round(rss, 1),
                "first_metric": metric.inner_text() if metric else None,
            })  # fmt: skip
            report(f"{elapsed / 60:5.1f} min  streamlit RSS {rss:7.1f} MB  "
                   f"first KPI {samples[-1]['first_metric']}")  # fmt: skip
            page.wait_for_timeout(interval_s * 1000)
        browser.close()
    return {
        "dashboard": settings.dashboard_url,
        "page": page_path or "overview",
        "refresh_s": settings.dashboard_refresh_s,
        "minutes": minutes,
        "interval_s": interval_s,
        "samples": samples,
        "verdict": verdict(samples),
    }
