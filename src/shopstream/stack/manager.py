"""`shopstream up | down | status`: start, stop and inspect the local stack."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shopstream.config import Settings, settings_env
from shopstream.stack.services import (
    External,
    Service,
    build_services,
    external_services,
    kafka_nodes,
)
from shopstream.stack.supervisor import Supervisor

__all__ = ["ServiceStatus", "StackError", "down", "status", "up"]

log = logging.getLogger(__name__)

Report = Callable[[str], None]
_FAILED_STATES = {"FATAL", "EXITED", "BACKOFF", "UNKNOWN"}


class StackError(RuntimeError):
    """The stack could not be brought to the requested state; the message says why."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    title: str
    state: str  # running | stopped | failed | external | unreachable
    address: str
    pid: int | None = None
    detail: str = ""


def up(
    settings: Settings,
    report: Report = log.info,
    provision: Callable[[Settings], None] | None = None,
) -> list[ServiceStatus]:
    """Starts whatever is not running yet, waiting for each to be really ready.

    `provision` runs once the data services are ready and before the API starts
    (migrations, topics).
    """
    if settings.dashboard_enabled and (problem := settings.dashboard_exposure_problem()):
        raise StackError(problem)  # before anything starts
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o755)  # the postgres account must be able to enter it when we run as root
    for ext in external_services(settings):
        _check_external(ext, report)
    services = build_services(settings)
    sup = Supervisor(data)
    _ensure_supervisord(sup, services, settings)
    running = sup.processes()
    for svc in services:
        if svc.name == "api" and provision is not None:
            provision(settings)
        state = running.get(svc.name, {}).get("statename")
        if state == "RUNNING":
            _wait_ready(svc, sup, timeout=30)
            report(f"{svc.title} already running at {svc.address}")
            continue
        _start(svc, sup, report)
    return status(settings)


def down(settings: Settings, report: Report = log.info) -> bool:
    """Stops what `up` started (by supervisord's PID), keeping all data."""
    sup = Supervisor(settings.data_path)
    _stop_kafka_nodes_together(sup, settings)
    stopped = sup.stop()
    report(
        "stack stopped; data kept in " + str(settings.data_path) if stopped else "stack not running"
    )
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    sup = Supervisor(settings.data_path)
    procs = sup.processes()
    result = []
    for svc in build_services(settings):
        info = procs.get(svc.name)
        state = info["statename"] if info else "STOPPED"
        pid = info.get("pid") or None if info else None
        mapped = (
            "running" if state == "RUNNING" else "failed" if state in _FAILED_STATES else "stopped"
        )
        detail = "" if mapped == "running" else f"log: {sup.log_path(svc.name)}"
        result.append(ServiceStatus(svc.name, svc.title, mapped, svc.address, pid, detail))
    for ext in external_services(settings):
        try:
            ext.ready()
            result.append(ServiceStatus(ext.name, ext.title, "external", ext.address))
        except Exception as exc:
            result.append(
                ServiceStatus(ext.name, ext.title, "unreachable", ext.address, None, str(exc))
            )
    return result


# ----------------------------------------------------------------------------- internals


def _stop_kafka_nodes_together(sup: Supervisor, settings: Settings, timeout: float = 30) -> None:
    """A cluster's nodes all at once. supervisord stops programs one after another, and a node
    shuts down by asking the controller quorum to move its partitions: the last node of three
    has no quorum left to ask and would wait out its stop timeout (60 s) before being killed.
    Signalled together, they still have their majority while each one leaves (~8 s)."""
    if settings.kafka_brokers < 2 or not settings.is_managed("kafka"):
        return
    names = [n.name for n in kafka_nodes(settings)]
    running = [n for n, info in sup.processes().items() if n in names and info.get("pid")]
    rpc = sup.rpc()
    for name in running:
        with contextlib.suppress(xmlrpc.client.Fault):
            rpc.supervisor.stopProcess(name, False)  # do not wait: signal the next one now
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs = sup.processes()
        if not any(procs.get(n, {}).get("statename") in ("RUNNING", "STOPPING") for n in names):
            return
        time.sleep(0.2)


def _stack_env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, **settings_env(settings)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _ensure_supervisord(sup: Supervisor, services: list[Service], settings: Settings) -> None:
    if sup.pid() is None:
        sup.write_config(services)
        sup.start(_stack_env(settings))
        return
    if sup.write_config(services):
        # Same as `supervisorctl update`: apply the new config to programs that changed.
        rpc = sup.rpc()
        added, changed, removed = rpc.supervisor.reloadConfig()[0]
        for name in removed + changed:
            with contextlib.suppress(xmlrpc.client.Fault):
                rpc.supervisor.stopProcessGroup(name)
            rpc.supervisor.removeProcessGroup(name)
        for name in added + changed:
            rpc.supervisor.addProcessGroup(name)


def _check_external(ext: External, report: Report) -> None:
    try:
        ext.ready()
    except Exception as exc:
        setting = {
            "kafka": "SHOPSTREAM_KAFKA_BOOTSTRAP",
            "postgres": "SHOPSTREAM_POSTGRES_DSN",
            "mongo": "SHOPSTREAM_MONGO_URI",
        }[ext.name]
        raise StackError(
            f"{ext.title} at {ext.address} (from {setting}) is not reachable: {exc}. "
            f"Start it, fix {setting}, or unset it to let shopstream run one locally."
        ) from exc
    report(f"{ext.title}: using the existing server at {ext.address}")


def _start(svc: Service, sup: Supervisor, report: Report) -> None:
    for port, setting in svc.ports.items():
        if not _port_free(port):
            raise StackError(
                f"port {port} is already in use, so {svc.title} cannot start there. "
                f"Stop whatever listens on it, or set {setting} to a free port."
            )
    report(f"starting {svc.title} ...")
    started = time.monotonic()
    try:
        svc.prepare()
    except Exception as exc:
        raise StackError(f"preparing {svc.title} failed: {exc}") from exc
    try:
        sup.start_program(svc.name)
    except RuntimeError as exc:
        raise StackError(f"{exc}\n{_log_tail(sup.log_path(svc.name))}") from exc
    _wait_ready(svc, sup, svc.ready_timeout)
    svc.after_ready()
    report(f"{svc.title} ready at {svc.address} ({time.monotonic() - started:.1f}s)")


def _wait_ready(svc: Service, sup: Supervisor, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        state = sup.processes().get(svc.name, {}).get("statename", "UNKNOWN")
        if state in _FAILED_STATES:
            raise StackError(
                f"{svc.title} exited (state {state}).\n{_log_tail(sup.log_path(svc.name))}"
            )
        try:
            svc.ready()
            return
        except Exception as exc:
            last = exc
            time.sleep(0.5)
    raise StackError(
        f"{svc.title} did not become ready within {timeout:.0f}s (last error: {last}).\n"
        f"{_log_tail(sup.log_path(svc.name))}"
    )


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"(no log at {path})"
    return f"last lines of {path}:\n" + "\n".join("  " + line for line in tail)
