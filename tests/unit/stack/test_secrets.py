"""Secret files: private from their first byte, generated secrets stable across restarts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shopstream.stack.secrets import generated_secret, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_secret_file_is_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_private(tmp_path / "sub" / "s", "hunter2")
    finally:
        os.umask(old)
    assert mode(tmp_path / "sub" / "s") == 0o600
    assert (tmp_path / "sub" / "s").read_text() == "hunter2"


def test_an_existing_readable_file_is_narrowed_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "passwords.json"
    path.write_text("an older and longer text")
    path.chmod(0o644)
    write_private(path, "new")
    assert mode(path) == 0o600
    assert path.read_text() == "new"


def test_a_generated_secret_is_random_private_and_kept(tmp_path: Path) -> None:
    first = generated_secret(tmp_path / "a")
    assert len(first) >= 64  # 48 random bytes, URL-safe base64
    assert mode(tmp_path / "a") == 0o600
    assert generated_secret(tmp_path / "a") == first
    assert generated_secret(tmp_path / "b") != first


def test_the_dashboards_secrets_file_is_private_and_holds_the_provider(tmp_path: Path) -> None:
    import tomllib

    from shopstream.config import Settings
    from shopstream.stack.services import dashboard_secrets

    settings = Settings(
        data_dir=tmp_path,
        dashboard_port=8599,
        dashboard_oidc_metadata_url="https://idp.example/.well-known/openid-configuration",
        dashboard_oidc_client_id="dash",
        dashboard_oidc_client_secret='with "quotes" and \\ backslash',  # type: ignore[arg-type]
    )
    path = dashboard_secrets(settings)
    assert mode(path) == 0o600
    auth = tomllib.loads(path.read_text())["auth"]
    assert auth["redirect_uri"] == "http://127.0.0.1:8599/oauth2callback"
    assert auth["client_secret"] == 'with "quotes" and \\ backslash'
    assert auth["server_metadata_url"].startswith("https://idp.example/")
    assert auth["cookie_secret"] == (tmp_path / "dashboard" / "cookie_secret").read_text()
    # Without a provider: no [auth] section (Streamlit's st.login is never called then).
    plain = dashboard_secrets(Settings(data_dir=tmp_path))
    assert "auth" not in tomllib.loads(plain.read_text())
