"""fakesnow's server (a Snowflake stand-in, tests only): the real connector talks to it (HTTP)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import snowflake.connector
from pydantic import SecretStr

from shopstream.stack.sandbox import free_ports
from tests.utils import wait_until

__all__ = ["DATABASE", "fakesnow_server"]

DATABASE = "SHOPSTREAM_TEST"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def fakesnow_server(log: Path) -> Iterator[dict[str, object]]:
    """A fakesnow server with database DATABASE; the `snowflake_*` settings that reach it."""
    port = free_ports(1)[0]
    binary = shutil.which("fakesnow") or str(Path(sys.executable).parent / "fakesnow")
    with log.open("w") as out:
        proc = subprocess.Popen([binary, "-s", "-p", str(port)], stdout=out, stderr=out)
    try:
        wait_until(lambda: _listening(port), "fakesnow to listen", timeout=60)
        con = snowflake.connector.connect(
            account="fake", user="fake", password="fake", host="127.0.0.1", port=port,
            protocol="http", network_timeout=30, login_timeout=30,
        )  # fmt: skip
        con.cursor().execute(f"create database if not exists {DATABASE}")
        con.close()
        yield {
            "warehouse": "snowflake",
            "snowflake_account": "fake",
            "snowflake_user": "fake",
            "snowflake_password": SecretStr("fake"),
            "snowflake_database": DATABASE,
            "snowflake_host": "127.0.0.1",
            "snowflake_port": port,
            "snowflake_protocol": "http",
        }
    finally:
        proc.terminate()
        proc.wait(30)
