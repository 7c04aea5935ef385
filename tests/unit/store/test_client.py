"""The one client factory of the document store (no server needed: clients connect lazily)."""

from __future__ import annotations

from shopstream.store.client import connect


def test_a_client_is_timezone_aware_and_names_itself() -> None:
    client = connect("mongodb://127.0.0.1:9", app="shopstream-test")
    try:
        assert client.codec_options.tz_aware is True
        assert client.options.pool_options.metadata["application"] == {"name": "shopstream-test"}
        # pymongo's default, long enough to ride out a store restart:
        assert client.options.server_selection_timeout == 30
    finally:
        client.close()


def test_a_timeout_bounds_server_selection_and_connecting() -> None:
    client = connect("mongodb://127.0.0.1:9", timeout_s=2.5)
    try:
        assert client.options.server_selection_timeout == 2.5
        assert client.options.pool_options.connect_timeout == 2.5
    finally:
        client.close()
