"""A real OpenID Connect provider on loopback (oidc-provider-mock) for the dashboard's sign-in,
and the browser steps of signing in through it.

The provider accepts any client id and secret and signs in whoever is typed into its
authorization page (the `sub`, which becomes the e-mail claim too). One provider serves the
whole test session, started on first use in a thread of the test process.
"""

from __future__ import annotations

import threading
from typing import Any

import oidc_provider_mock
import werkzeug.serving
from playwright.sync_api import Page

__all__ = ["OTHER", "VIEWER", "VIEWERS", "provider_url", "sign_in", "sign_in_settings"]

VIEWERS = "@shop.example"  # SHOPSTREAM_DASHBOARD_EMAIL_VIEWERS of the test stacks
VIEWER = "alice@shop.example"  # sees customers' e-mails
OTHER = "bob@elsewhere.example"  # signed in, sees them masked

_lock = threading.Lock()
_url: str | None = None


def provider_url() -> str:
    """The provider's base URL (its issuer), started once per process on 127.0.0.1. Its
    server thread is a daemon: it must not keep the test process alive at exit."""
    global _url
    with _lock:
        if _url is None:
            server = werkzeug.serving.make_server(
                "127.0.0.1", 0, oidc_provider_mock.app(), threaded=True
            )
            threading.Thread(target=server.serve_forever, name="oidc-provider", daemon=True).start()
            _url = f"http://127.0.0.1:{server.server_port}"
        return _url


def sign_in_settings() -> dict[str, Any]:
    """Settings that put a test stack's dashboard behind the provider."""
    return {
        "dashboard_oidc_metadata_url": f"{provider_url()}/.well-known/openid-configuration",
        "dashboard_oidc_client_id": "shopstream-tests",
        "dashboard_oidc_client_secret": "not-checked-by-the-mock",
        "dashboard_email_viewers": VIEWERS,
    }


def sign_in(page: Page, email: str, timeout_ms: float = 30_000) -> None:
    """From the dashboard's sign-in page: through the provider's form and back, signed in."""
    # The provider's page asks a CDN for its stylesheet; offline that must not stall it.
    page.context.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{provider_url()}/oauth2/authorize?**", timeout=timeout_ms)
    page.locator('input[name="sub"]').fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.get_by_text(f"Signed in as {email}").wait_for(timeout=timeout_ms)
