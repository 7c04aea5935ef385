"""Logging, configured once per process: `time level logger message key=value ...`."""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]

_configured = False


def configure_logging(level: str = "INFO") -> None:
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # py4j logs every gateway command at INFO ("Received command c on object id p0").
    for noisy in ("httpx", "httpcore", "faker", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True
