"""Keeps the developer's own SHOPSTREAM_* settings out of every test."""

from __future__ import annotations

import os

for _key in list(os.environ):
    if _key.startswith("SHOPSTREAM_") and _key not in ("SHOPSTREAM_CACHE_DIR", "SHOPSTREAM_VENV"):
        del os.environ[_key]
