"""Files that hold secrets: created private (0600) from their first byte, never world-readable
for a moment, and generated secrets that stay the same across restarts of a stack."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["generated_secret", "write_private"]


def write_private(path: Path, text: str) -> None:
    """Writes `text` to `path`, readable and writable by its owner only (0600).

    The file is created with mode 0600 (a later chmod would leave a window in which it has the
    umask's mode); an existing file is narrowed to 0600 before it is truncated.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def generated_secret(path: Path) -> str:
    """The secret kept in `path`, generated (48 random bytes, URL-safe) on first use."""
    if not path.exists():
        write_private(path, secrets.token_urlsafe(48))
    return path.read_text().strip()
