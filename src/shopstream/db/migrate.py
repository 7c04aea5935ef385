"""Versioned SQL migrations: `migrations/NNN_name.sql`, applied once each, in order.

Each file runs in its own transaction under an advisory lock, so concurrent callers
(`up`, `seed`, the API) never apply a migration twice.
"""

from __future__ import annotations

import logging
from importlib import resources

import psycopg

__all__ = ["applied_versions", "migrate"]

log = logging.getLogger(__name__)

_LOCK_KEY = 0x5350_5354  # "SPST"
_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def _available() -> list[tuple[int, str, str]]:
    folder = resources.files("shopstream.db").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(version), name, entry.read_text()))
    return sorted(found)


def applied_versions(conn: psycopg.Connection) -> set[int]:
    conn.execute(_LEDGER)
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate(dsn: str) -> list[int]:
    """Applies pending migrations; returns the versions applied now."""
    applied_now = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            done = applied_versions(conn)
            for version, name, sql in _available():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                log.info("applied migration version=%s name=%s", version, name)
                applied_now.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
