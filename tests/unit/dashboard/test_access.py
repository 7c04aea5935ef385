"""Who may see what on the dashboard: the lists, the mask, the viewer from the claims, and
when the dashboard refuses to serve at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopstream.config import Settings
from shopstream.dashboard.access import listed, mask_email, viewer_of

SIGN_IN = {
    "dashboard_oidc_metadata_url": "https://idp.example/.well-known/openid-configuration",
    "dashboard_oidc_client_id": "dash",
    "dashboard_oidc_client_secret": "s3cret",
}


def settings(**values: object) -> Settings:
    return Settings(data_dir=Path("/tmp/none"), **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("email", "entries", "expected"),
    [
        ("alice@shop.example", "alice@shop.example", True),
        ("Alice@Shop.Example", "alice@shop.example", True),
        ("alice@shop.example", " bob@x.org , @shop.example ", True),
        ("alice@evil-shop.example", "@shop.example", False),  # a domain, not a suffix
        ("alice@shop.example.evil", "@shop.example", False),
        ("alice@shop.example", "", False),
        ("alice@shop.example", "shop.example", False),  # a bare domain is not an entry
        (None, "@shop.example", False),
        ("not-an-address", "not-an-address", False),
    ],
)
def test_listed(email: str | None, entries: str, expected: bool) -> None:
    assert listed(email, entries) is expected


def test_mask_email_keeps_the_first_letter_and_the_domain() -> None:
    assert mask_email("alice@example.com") == "a•••@example.com"
    assert mask_email("x@y.org") == "x•••@y.org"
    assert mask_email("broken") == "•••"


def test_without_sign_in_the_one_viewer_sees_everything() -> None:
    me = viewer_of(settings(), {})
    assert me.email is None
    assert me.email_of("alice@example.com") == "alice@example.com"


def test_with_sign_in_only_listed_verified_viewers_see_addresses() -> None:
    s = settings(**SIGN_IN, dashboard_email_viewers="@shop.example")
    assert viewer_of(s, {"is_logged_in": True, "email": "ann@shop.example"}).sees_emails
    other = viewer_of(s, {"is_logged_in": True, "email": "bob@elsewhere.example"})
    assert not other.sees_emails
    assert other.email_of("carol@example.com") == "c•••@example.com"
    unverified = {"is_logged_in": True, "email": "ann@shop.example", "email_verified": False}
    assert not viewer_of(s, unverified).sees_emails
    assert not viewer_of(s, {"is_logged_in": False, "email": "ann@shop.example"}).sees_emails


def test_sign_in_settings_come_whole() -> None:
    with pytest.raises(ValueError, match="SHOPSTREAM_DASHBOARD_OIDC_CLIENT_SECRET"):
        settings(**{k: v for k, v in SIGN_IN.items() if "secret" not in k})
    assert settings(**SIGN_IN).dashboard_sign_in


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({}, None),  # dev on loopback: the demo
        ({"host": "localhost"}, None),
        ({"host": "0.0.0.0"}, "not a loopback address"),  # noqa: S104 (the case under test)
        ({"host": "10.1.2.3"}, "not a loopback address"),
        ({"host": "10.1.2.3", **SIGN_IN}, None),
        ({"environment": "prod", "api_keys": "k", "airflow_enabled": False}, "outside"),
        ({"environment": "prod", "api_keys": "k", "airflow_enabled": False, **SIGN_IN}, None),
    ],
)
def test_when_the_dashboard_refuses(values: dict[str, object], problem: str | None) -> None:
    found = settings(**values).dashboard_exposure_problem()
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
        assert "SHOPSTREAM_DASHBOARD_OIDC_METADATA_URL" in found


def test_up_refuses_an_exposed_dashboard_before_starting_anything(tmp_path: Path) -> None:
    from shopstream.stack import StackError, up

    exposed = Settings(data_dir=tmp_path / "data", host="0.0.0.0")  # noqa: S104 (under test)
    with pytest.raises(StackError, match="not a loopback address"):
        up(exposed, report=lambda _: None)
    assert not (tmp_path / "data").exists()  # nothing was prepared, let alone started
