"""What each managed service is: how to prepare it, start it and know it is ready."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path

from shopstream.config import Settings
from shopstream.messaging.cluster import default_replication
from shopstream.stack import airflow, probes
from shopstream.stack.probes import PG_SUPERUSER, pg_superuser_dsn
from shopstream.stack.secrets import generated_secret, write_private
from shopstream.tools import install

__all__ = [
    "KafkaNode",
    "Service",
    "build_services",
    "dashboard_secrets",
    "external_services",
    "kafka_nodes",
]


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


@dataclass(frozen=True)
class KafkaNode:
    """One node of the managed Kafka (KRaft, broker and controller in one JVM)."""

    node_id: int
    name: str  # the supervised program: `kafka` alone, `kafka-<id>` in a cluster
    port: int
    controller_port: int
    directory: Path


def kafka_nodes(settings: Settings) -> list[KafkaNode]:
    single = settings.kafka_brokers == 1
    return [
        KafkaNode(
            node_id=i,
            name="kafka" if single else f"kafka-{i}",
            port=port,
            controller_port=controller,
            directory=settings.data_path / ("kafka" if single else f"kafka-{i}"),
        )
        for i, (port, controller) in enumerate(settings.kafka_node_ports, start=1)
    ]


def _render_kafka_config(settings: Settings, node: KafkaNode) -> Path:
    nodes = kafka_nodes(settings)
    if len(nodes) == 1:
        quorum = f"controller.quorum.bootstrap.servers={settings.host}:{node.controller_port}"
    else:
        voters = ",".join(f"{n.node_id}@{settings.host}:{n.controller_port}" for n in nodes)
        quorum = f"controller.quorum.voters={voters}"
    replication = default_replication(len(nodes))
    template = resources.files("shopstream.stack").joinpath("kafka-server.properties").read_text()
    conf = node.directory / "server.properties"
    conf.write_text(
        template.replace("@HOST@", settings.host)
        .replace("@NODE_ID@", str(node.node_id))
        .replace("@QUORUM@", quorum)
        .replace("@REPLICATION@", str(replication))
        .replace("@MIN_ISR@", str(min(2, replication)))
        .replace("@PORT@", str(node.port))
        .replace("@CONTROLLER_PORT@", str(node.controller_port))
        .replace("@LOG_DIR@", str(node.directory / "data"))
    )
    log4j = resources.files("shopstream.stack").joinpath("kafka-log4j2.properties").read_text()
    (node.directory / "log4j2.properties").write_text(log4j)
    return conf


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = Path(home) / "bin" / "java" if home else shutil.which("java")
    if not java:
        raise install.InstallError("Kafka needs Java 17+ (`java` on PATH or JAVA_HOME)")
    return str(java)


def _cluster_id(settings: Settings, node: KafkaNode) -> str:
    """A Kafka cluster id (a base64url-encoded 16-byte UUID), the same for every node of a
    stack (one node keeps the id it was formatted with before clusters existed)."""
    seed = node.directory if settings.kafka_brokers == 1 else settings.data_path / "kafka-cluster"
    digest = hashlib.sha256(str(seed).encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _prepare_kafka(settings: Settings, node: KafkaNode, libs: Path) -> None:
    install.ensure_kafka(settings.cache_path)
    node.directory.mkdir(parents=True, exist_ok=True)
    conf = _render_kafka_config(settings, node)
    if (node.directory / "data" / "meta.properties").exists():
        return
    cmd = [
        _java(),
        "-cp",
        f"{libs}/*",
        f"-Dlog4j2.configurationFile={node.directory / 'log4j2.properties'}",
        "kafka.tools.StorageTool",
        "format",
        # one node: a dynamic quorum of itself; several: the static voters of the config
        *(["--standalone"] if settings.kafka_brokers == 1 else []),
        f"--cluster-id={_cluster_id(settings, node)}",  # ids may start with "-"
        "-c",
        str(conf),
        "--ignore-formatted",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")


def _kafka_ready(settings: Settings, node: KafkaNode, last: bool) -> None:
    """The last node to start: the whole cluster takes a write on every broker and reads it
    back. Any other node: its controller listens (it cannot elect a leader alone, so waiting
    for more would wait for nodes that start after it)."""
    if not last:
        probes.tcp(settings.host, node.controller_port)
        return
    probes.kafka(settings.kafka_servers, brokers=settings.kafka_brokers)


def kafka_services(settings: Settings) -> list[Service]:
    libs = install.kafka_libs_dir(settings.cache_path)
    nodes = kafka_nodes(settings)
    services = []
    for node in nodes:
        command = [
            _java(),
            f"-Xmx{settings.kafka_heap}",
            f"-Dlog4j2.configurationFile={node.directory / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(node.directory / "server.properties"),
        ]
        offset = 2 * (node.node_id - 1)
        port_note = f" + {offset}" if offset else ""
        services.append(
            Service(
                name=node.name,
                title="Kafka" if len(nodes) == 1 else f"Kafka node {node.node_id}",
                command=command,
                ports={
                    node.port: f"SHOPSTREAM_KAFKA_PORT{port_note}",
                    node.controller_port: f"SHOPSTREAM_KAFKA_CONTROLLER_PORT{port_note}",
                },
                address=f"{settings.host}:{node.port}",
                ready=partial(_kafka_ready, settings, node, node is nodes[-1]),
                prepare=partial(_prepare_kafka, settings, node, libs),
                # A cluster's node that cannot finish its controlled shutdown (no quorum left)
                # would wait forever; killed, it recovers its log at the next start.
                stopwaitsecs=60 if len(nodes) == 1 else 20,
                exitcodes="0,143",  # the JVM exits 128+SIGTERM after a clean shutdown
                priority=20 + node.node_id,
            )
        )
    return services


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


def dashboard_secrets(settings: Settings) -> Path:
    """Streamlit's secrets file for the dashboard (its `[auth]` section: the OIDC provider,
    this client, the redirect URI and the cookie's secret), written 0600 into the data dir.
    Without sign-in configured it holds no section (st.login is never called then)."""
    path = settings.data_path / "dashboard" / "secrets.toml"
    lines = ["# written by shopstream from the SHOPSTREAM_DASHBOARD_* settings; do not edit"]
    if settings.dashboard_sign_in:
        assert settings.dashboard_oidc_client_secret is not None  # the validator requires all three
        cookie = settings.dashboard_cookie_secret
        values = {
            "redirect_uri": f"{settings.dashboard_url}/oauth2callback",
            "cookie_secret": cookie.get_secret_value()
            if cookie is not None
            else generated_secret(settings.data_path / "dashboard" / "cookie_secret"),
            "client_id": settings.dashboard_oidc_client_id,
            "client_secret": settings.dashboard_oidc_client_secret.get_secret_value(),
            "server_metadata_url": settings.dashboard_oidc_metadata_url,
        }
        # TOML's basic strings take JSON's escapes.
        lines += ["[auth]", *(f"{key} = {json.dumps(value)}" for key, value in values.items())]
    write_private(path, "\n".join(lines) + "\n")
    return path


def dashboard_command(settings: Settings, executable: str = sys.executable) -> list[str]:
    """Streamlit serving the dashboard app, headless, on the dashboard port, with its secrets
    file (`dashboard_secrets`, written before it starts)."""
    secrets = settings.data_path / "dashboard" / "secrets.toml"
    return [
        executable, "-m", "streamlit", "run", str(dashboard_app()),
        "--secrets.files", str(secrets),
        "--server.port", str(settings.dashboard_port),
        "--server.address", settings.host,
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
        "--theme.base", "light",
    ]  # fmt: skip


def _prepare_dashboard(settings: Settings) -> None:
    problem = settings.dashboard_exposure_problem()
    if problem is not None:
        raise RuntimeError(problem)
    dashboard_secrets(settings)


def dashboard_service(settings: Settings) -> Service:
    return Service(
        name="dashboard",
        title="Dashboard (Streamlit)",
        command=dashboard_command(settings),
        ports={settings.dashboard_port: "SHOPSTREAM_DASHBOARD_PORT"},
        address=settings.dashboard_url,
        ready=lambda: probes.http_ok(f"{settings.dashboard_local_url}/_stcore/health"),
        prepare=lambda: _prepare_dashboard(settings),
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
        services.extend(kafka_services(settings))
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
