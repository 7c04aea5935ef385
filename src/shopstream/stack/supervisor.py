"""supervisord does the supervising; this module renders its config and talks to it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from shopstream.stack.secrets import write_private
from shopstream.stack.services import Service

__all__ = ["Supervisor"]

# AF_UNIX paths are limited to 108 bytes; deep data dirs get a socket in /tmp instead.
_MAX_SOCKET_PATH = 100


class Supervisor:
    """One supervisord per data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.conf = data_dir / "supervisord.conf"
        self.pidfile = data_dir / "supervisord.pid"
        self.logs = data_dir / "logs"
        sock = data_dir / "supervisor.sock"
        if len(str(sock)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
            sock = Path("/tmp") / f"shopstream-{digest}.sock"  # noqa: S108 - path length limit
        self.socket = sock

    # -------------------------------------------------------------- config

    def render(self, services: list[Service]) -> str:
        lines = [
            "; written by `shopstream up`; edits are overwritten",
            "[unix_http_server]",
            f"file={_esc(self.socket)}",
            "chmod=0700",
            "[supervisord]",
            f"logfile={_esc(self.logs / 'supervisord.log')}",
            f"pidfile={_esc(self.pidfile)}",
            f"childlogdir={_esc(self.logs)}",
            "identifier=shopstream",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]",
            f"serverurl=unix://{_esc(self.socket)}",
        ]
        for svc in services:
            lines += [
                f"[program:{svc.name}]",
                f"command={_esc(shlex.join(svc.command))}",
                "autostart=false",
                "autorestart=unexpected",
                "startsecs=2",
                "startretries=2",
                f"stopsignal={svc.stopsignal}",
                f"exitcodes={svc.exitcodes}",
                f"stopwaitsecs={svc.stopwaitsecs}",
                f"stopasgroup={str(svc.stop_as_group).lower()}",
                "killasgroup=true",
                f"priority={svc.priority}",
                "redirect_stderr=true",
                f"stdout_logfile={_esc(self.log_path(svc.name))}",
                "stdout_logfile_maxbytes=50MB",
                "stdout_logfile_backups=2",
            ]
            if svc.user:
                lines.append(f"user={svc.user}")
            if svc.env:
                pairs = (f'{k}="{_esc(v)}"' for k, v in sorted(svc.env.items()))
                lines.append(f"environment={','.join(pairs)}")
        return "\n".join(lines) + "\n"

    def write_config(self, services: list[Service]) -> bool:
        """Writes the config; returns True when it differs from the one on disk."""
        text = self.render(services)
        self.logs.mkdir(parents=True, exist_ok=True)
        old = self.conf.read_text() if self.conf.exists() else None
        if old != text:
            write_private(self.conf, text)
        return old is not None and old != text

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    # -------------------------------------------------------------- daemon

    def pid(self) -> int | None:
        """The PID of this data dir's supervisord, if it is alive."""
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None
        return pid

    def start(self, env: dict[str, str], timeout: float = 20.0) -> None:
        """Starts supervisord (it daemonizes) and waits until it answers."""
        cmd = [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"supervisord failed to start:\n{proc.stdout}{proc.stderr}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, xmlrpc.client.Fault):
                if self.rpc().supervisor.getState()["statename"] == "RUNNING":
                    return
            time.sleep(0.2)
        raise RuntimeError(f"supervisord did not answer on {self.socket} (see {self.logs})")

    def stop(self, timeout: float = 120.0) -> bool:
        """Stops supervisord by PID; it stops its programs first. False if none was running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.2)
        raise RuntimeError(f"supervisord (pid {pid}) did not stop within {timeout:.0f}s")

    def rpc(self) -> Any:
        transport = SupervisorTransport(None, None, serverurl=f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def processes(self) -> dict[str, dict[str, Any]]:
        """Program name -> supervisord's process info; empty when supervisord is down."""
        if self.pid() is None:
            return {}
        try:
            return {p["name"]: p for p in self.rpc().supervisor.getAllProcessInfo()}
        except (OSError, xmlrpc.client.Fault):
            return {}

    def start_program(self, name: str) -> None:
        try:
            self.rpc().supervisor.startProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise RuntimeError(
                    f"supervisord could not start {name}: {fault.faultString}"
                ) from None

    def kill_program(self, name: str, timeout: float = 30.0) -> int:
        """SIGKILLs the program (a crash, not a shutdown) and keeps it down until
        `start_program`; returns the PID killed. supervisord restarts a program that dies
        unexpectedly, so the restart it begins is stopped at once."""
        pid = int(self.processes()[name]["pid"])
        if not pid:
            raise RuntimeError(f"{name} is not running")
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while self.processes().get(name, {}).get("pid") == pid:
            if time.monotonic() > deadline:
                raise RuntimeError(f"supervisord did not notice that {name} ({pid}) died")
            time.sleep(0.05)
        self.stop_program(name)
        return pid

    def stop_program(self, name: str) -> None:
        try:
            self.rpc().supervisor.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise


def _esc(value: object) -> str:
    # supervisord's config parser expands %(name)s; a literal % must be doubled.
    return str(value).replace("%", "%%")
