"""Keeps the developer's own SHOPSTREAM_* settings out of every test."""

from __future__ import annotations

import os

for _key in list(os.environ):
    if _key.startswith("SHOPSTREAM_") and _key not in ("SHOPSTREAM_CACHE_DIR", "SHOPSTREAM_VENV"):
        del os.environ[_key]


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    """One local SparkSession for the whole run (~8 s to start), with the connector jars."""
    from shopstream.config import get_settings
    from shopstream.streaming.session import spark_session

    session = spark_session(get_settings(spark_master="local[2]"), app="shopstream-tests")
    yield session
    session.stop()
