"""What each managed service is: how to prepare it, start it and know it is ready."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from shopstream.config import Settings
from shopstream.stack import airflow, probes
from shopstream.stack.probes import PG_SUPERUSER, pg_superuser_dsn
from shopstream.tools import install

__all__ = ["Service", "build_services", "external_services"]


@dataclass(frozen=True)
class Service:
    """A server shopstream starts and supervises."""

    name: str
    title: str
    command: list[str]
    ports: dict[int, str]  # port -> the setting that changes it
    address: str
    ready: Callable[[], None]
    prepare: Callable[[], None] = lambda: None
    after_ready: Callable[[], None] = lambda: None
    user: str | None = None
    stopsignal: str = "TERM"
    stopwaitsecs: int = 30
    exitcodes: str = "0"
    ready_timeout: float = 90.0
    priority: int = 100
    # Whether `down` signals the whole process group. The streaming job stops its own JVM
    # (signalled together, the JVM would shut down under the Python driver mid-call).
    stop_as_group: bool = True
    env: dict[str, str] = field(default_factory=dict)  # added to the environment it inherits


@dataclass(frozen=True)
class External:
    """A service given by URL: nothing is started for it."""

    name: str
    title: str
    address: str
    ready: Callable[[], None]


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_user(user: str | None, cmd: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


# ----------------------------------------------------------------------------- PostgreSQL


def _pg_user() -> str | None:
    # PostgreSQL refuses to run as root; the distribution's `postgres` account runs it then.
    return "postgres" if _is_root() else None


def _pg_cluster_dir(settings: Settings) -> Path:
    wanted = settings.data_path / "postgres"
    user = _pg_user()
    if user is None or _reachable_by(user, settings.data_path):
        return wanted
    # The data dir sits below a directory the postgres account cannot enter (e.g. /root).
    digest = hashlib.sha256(str(settings.data_path).encode()).hexdigest()[:12]
    return Path("/var/lib/shopstream") / digest / "postgres"


def _reachable_by(user: str, path: Path) -> bool:
    probe = path if path.exists() else path.parent
    cmd = ["runuser", "-u", user, "--", "test", "-x", str(probe)]
    return subprocess.run(cmd, check=False, capture_output=True).returncode == 0


def _prepare_postgres(settings: Settings, cluster: Path, bindir: Path) -> None:
    if (cluster / "PG_VERSION").exists():
        return
    cluster.mkdir(parents=True, exist_ok=True)
    user = _pg_user()
    if user:
        shutil.chown(cluster, user, user)
    cluster.chmod(0o700)
    initdb = [
        str(bindir / "initdb"),
        "-D",
        str(cluster),
        "-U",
        PG_SUPERUSER,
        "--auth-local=trust",
        "--auth-host=trust",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
    ]
    proc = subprocess.run(_as_user(user, initdb), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"initdb failed for {cluster}:\n{proc.stdout}{proc.stderr}")


def postgres_service(settings: Settings) -> Service:
    bindir = install.postgres_bindir()
    cluster = _pg_cluster_dir(settings)
    port = settings.postgres_port
    superuser_dsn = pg_superuser_dsn(settings)
    command = [
        str(bindir / "postgres"),
        "-D",
        str(cluster),
        "-p",
        str(port),
        "-c",
        f"listen_addresses={settings.host}",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
        "-c",
        "logging_collector=off",
    ]
    return Service(
        name="postgres",
        title="PostgreSQL",
        command=command,
        ports={port: "SHOPSTREAM_POSTGRES_PORT"},
        address=settings.postgres_url,
        ready=lambda: probes.postgres(superuser_dsn),
        prepare=lambda: _prepare_postgres(settings, cluster, bindir),
        after_ready=lambda: probes.bootstrap_postgres(superuser_dsn, "shopstream", "shopstream"),
        user=_pg_user(),
        stopsignal="INT",  # "fast" shutdown: roll back clients, checkpoint, exit
        priority=10,
    )


# ----------------------------------------------------------------------------- Kafka


def _render_kafka_config(settings: Settings, kafka_dir: Path) -> Path:
    template = resources.files("shopstream.stack").joinpath("kafka-server.properties").read_text()
    conf = kafka_dir / "server.properties"
    conf.write_text(
        template.replace("@HOST@", settings.host)
        .replace("@PORT@", str(settings.kafka_port))
        .replace("@CONTROLLER_PORT@", str(settings.kafka_controller_port))
        .replace("@LOG_DIR@", str(kafka_dir / "data"))
    )
    log4j = resources.files("shopstream.stack").joinpath("kafka-log4j2.properties").read_text()
    (kafka_dir / "log4j2.properties").write_text(log4j)
    return conf


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = Path(home) / "bin" / "java" if home else shutil.which("java")
    if not java:
        raise install.InstallError("Kafka needs Java 17+ (`java` on PATH or JAVA_HOME)")
    return str(java)


def _prepare_kafka(settings: Settings, kafka_dir: Path, libs: Path) -> None:
    install.ensure_kafka(settings.cache_path)
    kafka_dir.mkdir(parents=True, exist_ok=True)
    conf = _render_kafka_config(settings, kafka_dir)
    if (kafka_dir / "data" / "meta.properties").exists():
        return
    # A Kafka cluster id is a base64url-encoded 16-byte UUID.
    digest = hashlib.sha256(str(kafka_dir).encode()).digest()[:16]
    cluster_id = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    cmd = [
        _java(),
        "-cp",
        f"{libs}/*",
        f"-Dlog4j2.configurationFile={kafka_dir / 'log4j2.properties'}",
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        f"--cluster-id={cluster_id}",  # ids may start with "-"
        "-c",
        str(conf),
        "--ignore-formatted",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")


def kafka_service(settings: Settings) -> Service:
    libs = install.kafka_libs_dir(settings.cache_path)
    kafka_dir = settings.data_path / "kafka"
    command = [
        _java(),
        f"-Xmx{settings.kafka_heap}",
        f"-Dlog4j2.configurationFile={kafka_dir / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(kafka_dir / "server.properties"),
    ]
    return Service(
        name="kafka",
        title="Kafka",
        command=command,
        ports={
            settings.kafka_port: "SHOPSTREAM_KAFKA_PORT",
            settings.kafka_controller_port: "SHOPSTREAM_KAFKA_CONTROLLER_PORT",
        },
        address=settings.kafka_servers,
        ready=lambda: probes.kafka(settings.kafka_servers),
        prepare=lambda: _prepare_kafka(settings, kafka_dir, libs),
        stopwaitsecs=60,
        exitcodes="0,143",  # the JVM exits 128+SIGTERM after a clean shutdown
        priority=20,
    )


# ----------------------------------------------------------------------------- MongoDB role


def _prepare_mongo(settings: Settings, mongo_dir: Path, uses_ferretdb: bool) -> None:
    if uses_ferretdb:
        install.ensure_ferretdb(settings.cache_path)
    mongo_dir.mkdir(parents=True, exist_ok=True)


# Go's collector at 400 instead of 100: FerretDB's heap is small and churned by every document
# it converts; a bare insert loop measured 18 % less FerretDB CPU and 10-17 % more inserts per
# second, its peak RSS 83 -> 150 MB (decision 41; 77 MB after 33 minutes of `make demo`). A
# GOGC in the environment of `shopstream up` wins.
FERRETDB_GOGC = "400"


def mongo_service(settings: Settings) -> Service:
    mongo_dir = settings.data_path / "mongo"
    mongod = install.find_mongod()
    hp = f"{settings.host}:{settings.mongo_port}"
    env: dict[str, str] = {}
    if mongod is not None:
        command = [
            str(mongod),
            "--dbpath",
            str(mongo_dir),
            "--bind_ip",
            settings.host,
            "--port",
            str(settings.mongo_port),
        ]
        ports = {settings.mongo_port: "SHOPSTREAM_MONGO_PORT"}
        title = "MongoDB"
    else:
        ferret = install.ferretdb_binary(settings.cache_path)
        command = [
            str(ferret),
            "--handler=sqlite",
            f"--sqlite-url=file:{mongo_dir}/",
            f"--listen-addr={hp}",
            f"--state-dir={mongo_dir}",
            f"--debug-addr={settings.host}:{settings.mongo_debug_port}",
            "--telemetry=disable",
            "--log-level=WARN",
        ]
        env = {"GOGC": os.environ.get("GOGC", FERRETDB_GOGC)}
        ports = {
            settings.mongo_port: "SHOPSTREAM_MONGO_PORT",
            settings.mongo_debug_port: "SHOPSTREAM_MONGO_DEBUG_PORT",
        }
        title = f"MongoDB role (FerretDB {install.FERRETDB_VERSION.lstrip('v')})"
    return Service(
        name="mongo",
        title=title,
        command=command,
        ports=ports,
        address=settings.mongo_url,
        ready=lambda: probes.mongo(settings.mongo_url),
        prepare=lambda: _prepare_mongo(settings, mongo_dir, uses_ferretdb=mongod is None),
        priority=30,
        env=env,
    )


# ----------------------------------------------------------------------------- ingestion API


def api_service(settings: Settings) -> Service:
    return Service(
        name="api",
        title="Ingestion API",
        command=[sys.executable, "-m", "shopstream", "api"],
        ports={settings.api_port: "SHOPSTREAM_API_PORT"},
        address=settings.api_url,
        ready=lambda: probes.http_ok(f"{settings.api_url}/readyz"),
        priority=40,
    )


# ----------------------------------------------------------------------------- streaming job


def stream_service(settings: Settings) -> Service:
    return Service(
        name="stream",
        title="Streaming job (Spark)",
        command=[sys.executable, "-m", "shopstream", "stream"],
        ports={},
        address=f"{settings.spark_master} -> {settings.lake}/orders, "
        f"{settings.mongo_database}.orders",
        ready=lambda: probes.stream(settings.stream_ready_path),
        prepare=lambda: settings.stream_ready_path.unlink(missing_ok=True),
        stopwaitsecs=60,
        stop_as_group=False,  # SIGTERM to the driver, which stops the queries (killasgroup stays)
        ready_timeout=180.0,  # first start may fetch the connector jars
        priority=50,
    )


# ----------------------------------------------------------------------------- dashboard


def dashboard_app() -> Path:
    """The dashboard's Streamlit script, found without importing the dashboard (which builds on
    the stack, not the reverse)."""
    spec = importlib.util.find_spec("shopstream.dashboard")
    if spec is None or spec.origin is None:
        raise RuntimeError("the shopstream.dashboard package is missing from this install")
    return Path(spec.origin).with_name("app.py")


def dashboard_command(settings: Settings, executable: str = sys.executable) -> list[str]:
    """Streamlit serving the dashboard app, headless, on the dashboard port."""
    return [
        executable, "-m", "streamlit", "run", str(dashboard_app()),
        "--server.port", str(settings.dashboard_port),
        "--server.address", settings.host,
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
        "--theme.base", "light",
    ]  # fmt: skip


def dashboard_service(settings: Settings) -> Service:
    return Service(
        name="dashboard",
        title="Dashboard (Streamlit)",
        command=dashboard_command(settings),
        ports={settings.dashboard_port: "SHOPSTREAM_DASHBOARD_PORT"},
        address=settings.dashboard_url,
        ready=lambda: probes.http_ok(f"{settings.dashboard_url}/_stcore/health"),
        priority=60,
    )


# ----------------------------------------------------------------------------- Airflow


def airflow_services(settings: Settings) -> list[Service]:
    """Airflow's API server (UI, REST and task execution API), scheduler and DAG processor."""

    def launcher(*args: str) -> list[str]:
        return [sys.executable, "-m", "shopstream.stack.airflow", *args]

    url = airflow.airflow_url(settings)
    return [
        Service(
            name="airflow-api",
            title="Airflow API server + UI",
            command=launcher("api-server"),
            ports={settings.airflow_port: "SHOPSTREAM_AIRFLOW_PORT"},
            address=url,
            ready=lambda: airflow.healthy(settings, "api-server"),
            prepare=lambda: airflow.prepare_airflow(settings),
            ready_timeout=240.0,  # the first start creates Airflow's virtualenv
            priority=70,
        ),
        Service(
            name="airflow-scheduler",
            title="Airflow scheduler (LocalExecutor)",
            command=launcher("scheduler"),
            ports={},
            address=f"parallelism {settings.airflow_parallelism}",
            ready=lambda: airflow.healthy(settings, "scheduler"),
            ready_timeout=120.0,
            stopwaitsecs=60,
            priority=71,
        ),
        Service(
            name="airflow-dag-processor",
            title="Airflow DAG processor",
            command=launcher("dag-processor"),
            ports={},
            address=str(airflow.DAGS_FOLDER),
            ready=lambda: airflow.healthy(settings, "dag-processor"),
            ready_timeout=120.0,
            priority=72,
        ),
    ]


def build_services(settings: Settings) -> list[Service]:
    """The services `up` starts, in start order (dependencies first)."""
    services = []
    if settings.is_managed("postgres"):
        services.append(postgres_service(settings))
    if settings.is_managed("kafka"):
        services.append(kafka_service(settings))
    if settings.is_managed("mongo"):
        services.append(mongo_service(settings))
    services.append(api_service(settings))
    if settings.stream_enabled:
        services.append(stream_service(settings))
    if settings.dashboard_enabled:
        services.append(dashboard_service(settings))
    if settings.airflow_enabled:
        services.extend(airflow_services(settings))
    return services


def external_services(settings: Settings) -> list[External]:
    """The services given by URL, which `up` only checks."""
    found = []
    if not settings.is_managed("postgres"):
        found.append(
            External(
                "postgres",
                "PostgreSQL",
                _redact(settings.postgres_url),
                lambda: probes.postgres(settings.postgres_url),
            )
        )
    if not settings.is_managed("kafka"):
        found.append(
            External(
                "kafka",
                "Kafka",
                settings.kafka_servers,
                lambda: probes.kafka_reachable(settings.kafka_servers),
            )
        )
    if not settings.is_managed("mongo"):
        found.append(
            External(
                "mongo",
                "MongoDB",
                _redact(settings.mongo_url),
                lambda: probes.mongo(settings.mongo_url),
            )
        )
    return found


def _redact(url: str) -> str:
    """Hides a password in a URL (`user:secret@` becomes `user:***@`)."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"
