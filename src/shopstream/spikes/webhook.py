"""The spike alerts' webhook: its payload formats, and one POST retried with back-off
(`spikes.alerts` decides what to post, and when).

- "json": `{"source": "shopstream", "sent_at", "alerts": [...]}`, the alerts as built.
- "slack": a Slack incoming webhook's message, `{"text", "blocks"}`: a header, a line per
  alert (names escaped for Slack's mrkdwn) and a link to the Demand spikes page; `text` is
  the notification's summary.

`Post` is what the alerting logic is given: a callable that POSTs one JSON payload and raises
`DeliveryError` when the receiver did not take it. `http_poster` is the real one (httpx, one
client per run); tests pass their own. The URL is a secret (a Slack webhook's path holds its
token): no message built here contains it (`redact`), and httpx's own request log stays below
the CLI's level (`shopstream.logs` sets it to WARNING).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

__all__ = [
    "DeliveryError",
    "Post",
    "deliver",
    "http_poster",
    "json_payload",
    "payload",
    "redact",
    "slack_payload",
]

Post = Callable[[Mapping[str, Any]], None]
Alert = Mapping[str, Any]  # one alert as `spikes.alerts` builds it (JSON-ready)

# A receiver's answers worth trying again at once: it is busy or restarting. Any other 4xx
# (a wrong or revoked URL, a refused payload) fails the same way until someone changes it, so
# it is not retried within the run (the next run tries again, and heals once it is fixed).
RETRY_STATUS = frozenset({408, 425, 429})
HIDDEN = "<SHOPSTREAM_SPIKE_WEBHOOK_URL>"


# ----------------------------------------------------------------------------- payloads


def json_payload(alerts: Sequence[Alert], sent_at: datetime) -> dict[str, Any]:
    return {"source": "shopstream", "sent_at": sent_at.isoformat(), "alerts": list(alerts)}


def _mrkdwn(text: object) -> str:
    """Text for Slack's mrkdwn: its three control characters escaped."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _line(a: Alert) -> str:
    if a["kind"] == "store_event":
        level = "" if a["store_level"] is None else f" x{a['store_level']:.2f}"
        return f"*Store event* {a['day']}: the whole store sold{level} its usual"
    what = _mrkdwn(a["name"] or f"product {a['product_id']}")
    where = f"product {a['product_id']}" + (f", {_mrkdwn(a['category'])}" if a["category"] else "")
    ratio = "no sales usually" if a["ratio"] is None else f"x{a['ratio']:.2f}"
    if a["kind"] == "emerging":
        head, units = "*Emerging*", f"{a['units']} units so far"
        tail = f", crossed at {a['crossed_at'][11:16]}" if a["crossed_at"] else ""
    else:
        head, units, tail = "*Spike*", f"{a['units']} units", ""
    threshold = "" if a["threshold"] is None else f" vs threshold {a['threshold']:,.1f}"
    return f"{head} {a['day']}: *{what}* ({where}): {units}{threshold} ({ratio}){tail}"


def slack_payload(alerts: Sequence[Alert]) -> dict[str, Any]:
    """A Slack message: a header, a line per alert, and a link to the Demand spikes page."""
    title = f"shopstream: {len(alerts)} demand spike alert{'s' if len(alerts) != 1 else ''}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}}
    ]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": _line(a)}} for a in alerts]
    url = next((a["url"] for a in alerts if a.get("url")), None)
    if url:
        link = {"type": "mrkdwn", "text": f"<{url}|Open the Demand spikes page>"}
        blocks.append({"type": "context", "elements": [link]})
    names = ", ".join(_mrkdwn(a["name"] or a["kind"].replace("_", " ")) for a in alerts[:5])
    more = f" and {len(alerts) - 5} more" if len(alerts) > 5 else ""
    return {"text": f"{title}: {names}{more}", "blocks": blocks}


def payload(
    fmt: Literal["json", "slack"], alerts: Sequence[Alert], sent_at: datetime
) -> dict[str, Any]:
    """The POST's body for a batch of alerts, in format `fmt`."""
    return slack_payload(alerts) if fmt == "slack" else json_payload(alerts, sent_at)


# ----------------------------------------------------------------------------- the POST


class DeliveryError(Exception):
    """The receiver did not take a POST; `retry`: trying again soon may succeed."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def redact(text: str, url: str) -> str:
    """`text` without the URL, its path or its query (where a webhook keeps its token)."""
    parts = urlsplit(url)
    for secret in (url, url.rstrip("/"), parts.path, parts.query):
        if len(secret) > 1:
            text = text.replace(secret, HIDDEN)
    return text


def deliver(
    post: Post,
    payload: Mapping[str, Any],
    attempts: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, str | None]:
    """POSTs `payload` up to `attempts` times, waiting `backoff_s`, then twice that, ... in
    between; returns (POSTs made, the last error, or None once delivered)."""
    error = None
    for attempt in range(attempts):
        if attempt:
            sleep(backoff_s * 2 ** (attempt - 1))
        try:
            post(payload)
        except DeliveryError as exc:
            error = str(exc)
            if not exc.retry:
                return attempt + 1, error
        else:
            return attempt + 1, None
    return attempts, error


@contextmanager
def http_poster(url: str, timeout_s: float) -> Iterator[Post]:
    """A `Post` to `url` (each POST bounded by `timeout_s`; redirects are not followed: a
    webhook that moved is an error to fix, not a hop to take with the payload)."""
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:

        def post(payload: Mapping[str, Any]) -> None:
            try:
                answer = client.post(url, json=dict(payload))
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                # not chained: an httpx error may carry the request, and with it the URL
                raise DeliveryError(redact(f"{type(exc).__name__}: {exc}", url), True) from None
            if answer.is_success:
                return
            status = answer.status_code
            said = redact(" ".join(answer.text.split())[:200], url)
            raise DeliveryError(
                f"HTTP {status} {answer.reason_phrase}" + (f": {said}" if said else ""),
                status >= 500 or status in RETRY_STATUS,
            )

        yield post
