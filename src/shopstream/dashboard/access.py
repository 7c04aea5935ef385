"""Who is looking: the sign-in gate in front of every page, and who sees customers' e-mails.

With a provider configured (`SHOPSTREAM_DASHBOARD_OIDC_*`), Streamlit's own `st.login` signs
people in by OpenID Connect; nothing of the pages runs before that.
`SHOPSTREAM_DASHBOARD_ALLOWED_USERS` narrows who may use it once signed in,
`SHOPSTREAM_DASHBOARD_EMAIL_VIEWERS` who sees customers' addresses unmasked (everyone else sees
`a•••@example.com`). Without a provider the
dashboard serves only in `dev` on loopback (`Settings.dashboard_exposure_problem`), where the
one person at the keyboard sees everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from shopstream.config import Settings
from shopstream.dashboard import resources

__all__ = ["Viewer", "gate", "listed", "mask_email", "viewer", "viewer_of"]


@dataclass(frozen=True)
class Viewer:
    email: str | None  # the signed-in address; None without sign-in (dev on loopback)
    sees_emails: bool

    def email_of(self, address: str) -> str:
        """A customer's address as this viewer may see it."""
        return address if self.sees_emails else mask_email(address)


def listed(email: str | None, entries: str) -> bool:
    """Whether `email` is in a comma-separated list of addresses and `@domain`s (any case)."""
    if not email or "@" not in email:
        return False
    email = email.strip().lower()
    domain = email[email.rindex("@") :]
    for entry in (e.strip().lower() for e in entries.split(",")):
        if entry and (entry == email or (entry.startswith("@") and entry == domain)):
            return True
    return False


def mask_email(address: str) -> str:
    """`alice@example.com` -> `a•••@example.com`: enough to tell two customers apart on the
    page, not enough to write to them."""
    local, at, domain = address.partition("@")
    if not at:
        return "•••"
    return f"{local[:1]}•••@{domain}"


def viewer_of(settings: Settings, user: Mapping[str, Any]) -> Viewer:
    """The viewer from the settings and the signed-in user's claims (`st.user`)."""
    if not settings.dashboard_sign_in:
        return Viewer(email=None, sees_emails=True)
    email = user.get("email") if user.get("is_logged_in") else None
    address = email if isinstance(email, str) else None
    # An address the provider says is not verified grants nothing by its name.
    verified = user.get("email_verified", True) is not False
    sees = verified and listed(address, settings.dashboard_email_viewers)
    return Viewer(email=address, sees_emails=sees)


def viewer() -> Viewer:
    return viewer_of(resources.settings(), st.user.to_dict())


def gate() -> None:
    """Stops the script unless this browser session may see the pages."""
    settings = resources.settings()
    problem = settings.dashboard_exposure_problem()
    if problem is not None:
        st.error(f"The dashboard refuses to serve: {problem}.")
        st.stop()
    if not settings.dashboard_sign_in:
        return
    user = st.user.to_dict()
    if not user.get("is_logged_in"):
        _sign_in_page()
        st.stop()
    me = viewer_of(settings, user)
    allowed = not settings.dashboard_allowed_users or (
        user.get("email_verified", True) is not False
        and listed(me.email, settings.dashboard_allowed_users)
    )
    if not allowed:
        st.title("shopstream")
        st.error(
            f"You are signed in as {me.email or 'an account without an e-mail address'}, "
            "which may not use this dashboard. Ask its operator to add you to "
            "SHOPSTREAM_DASHBOARD_ALLOWED_USERS, or sign in with another account."
        )
        st.button("Sign out", on_click=st.logout)
        st.stop()
    with st.sidebar:
        st.caption(f"Signed in as **{me.email or 'unknown'}**")
        st.button("Sign out", on_click=st.logout, type="tertiary")


def _sign_in_page() -> None:
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title("🛒 shopstream")
        st.write(
            "Live orders, customers and demand. The dashboard shows customer data, so it "
            "asks who you are first."
        )
        st.button("Sign in", on_click=st.login, type="primary", icon=":material/login:")
