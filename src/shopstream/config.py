"""One typed settings object for every component: `SHOPSTREAM_*` settings are parsed here.

Nothing else reads `SHOPSTREAM_*` settings: the Airflow DAGs, which run under Airflow's own
interpreter, get one JSON document computed from these settings (`stack.airflow.dag_config`,
in `SHOPSTREAM_DAG_CONFIG`), and a command that changes a setting for what it starts passes
the changed `Settings` on (`shopstream demo`).

Every external service is either *managed* (shopstream starts it locally, on the port given
here) or *external* (a URL is given and nothing is started for it).
"""

from __future__ import annotations

import ipaddress
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shopstream.domain.clock import Clock

__all__ = ["DEV_AIRFLOW_PASSWORD", "DEV_API_KEY", "Settings", "get_settings", "settings_env"]

# Placeholders that make `make demo` work out of the box; refused outside `dev`.
DEV_API_KEY = "dev-key-change-me"
DEV_AIRFLOW_PASSWORD = "shopstream"  # noqa: S105 (the public placeholder, refused outside dev)

Service = Literal["postgres", "kafka", "mongo"]  # the services a URL can replace


class Settings(BaseSettings):
    """Configuration, from `SHOPSTREAM_*` environment variables or a `.env` file."""

    model_config = SettingsConfigDict(
        env_prefix="SHOPSTREAM_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["dev", "test", "prod"] = "dev"
    log_level: str = "INFO"
    # The timezone in which "a day" is counted (daily demand, seasonality). UTC inside.
    business_timezone: str = "UTC"
    # The clock every date decision reads (docs/time.md): the real one unless shifted by
    # `clock_offset_s` seconds (a running clock, shared by every process of a stack) or
    # stopped at `clock_frozen_at`. For tests and replays; never needed in production.
    clock_offset_s: float = 0.0
    clock_frozen_at: AwareDatetime | None = None

    # Where managed services keep their data and logs, and where downloads are cached.
    data_dir: Path = Path(".shopstream")
    cache_dir: Path = Path.home() / ".cache" / "shopstream"

    # External services: when set, nothing is started for them.
    kafka_bootstrap: str | None = None
    postgres_dsn: SecretStr | None = None
    mongo_uri: SecretStr | None = None

    # Ports of managed services.
    host: str = "127.0.0.1"
    # A managed Kafka of `kafka_brokers` KRaft nodes (broker + controller each): node i (from 0)
    # listens on kafka_port + 2i, its controller on kafka_controller_port + 2i.
    kafka_brokers: int = Field(default=1, ge=1, le=9)
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    postgres_port: int = 5433
    mongo_port: int = 27017
    mongo_debug_port: int = 27018

    # Document store.
    mongo_database: str = "shopstream"

    # Streaming (Spark). Lake and checkpoints default to folders in the data dir; the lake
    # may be `s3://bucket/prefix` (read through s3a).
    spark_master: str = "local[*]"
    spark_driver_memory: str = "1g"
    lake_uri: str | None = None
    checkpoint_uri: str | None = None
    # The enrichment's trigger: a micro-batch takes ~0.3 s on 2 cores, so an order waits
    # about half a trigger for its batch (docs/benchmarks.md).
    stream_trigger_s: float = Field(default=0.5, gt=0)
    # The lake query's trigger: longer than enrichment's, since each batch writes at least one
    # Parquet file per day it touches (fewer, larger files; the ELT loads daily).
    lake_trigger_s: float = Field(default=10.0, gt=0)
    stream_enabled: bool = True  # whether `up` runs the streaming job
    # The enrichment's largest batch: only reached behind (an outage, an import of history),
    # where a larger batch shares its fixed cost among more orders (decision 48: 100,000
    # orders of history at 1,818/s with 5,000, 2,353/s with 20,000).
    stream_max_offsets_per_trigger: int = Field(default=20_000, ge=1)
    # The lake's bound per batch: it triggers every lake_trigger_s, so this caps its rate
    # (200,000 per 10 s = 20,000 records/s) and the size of its catch-up batches.
    lake_max_offsets_per_trigger: int = Field(default=200_000, ge=1)
    # Records a micro-batch gives each writing task before it uses another core.
    stream_records_per_task: int = Field(default=1000, ge=1)
    # How late an order may arrive before its day is declared complete (Spark interval).
    lake_watermark_delay: str = "10 minutes"
    # Tasks writing each lake batch: each writes one Parquet file per day it touches.
    lake_writers: int = Field(default=1, ge=1)
    # Enrichment sink (docs/streaming.md): documents per insert command; how long a batch waits
    # for Kafka to acknowledge its dead letters; how often each worker re-reads the customers and
    # products changed in PostgreSQL, and how many of each it keeps; how many `day|customer`
    # markers a worker remembers; how many rollup documents the driver keeps in memory.
    mongo_bulk_size: int = Field(default=1000, ge=1, le=100_000)
    dlq_flush_timeout_s: float = Field(default=30.0, gt=0)
    dimension_refresh_s: float = Field(default=30.0, gt=0)
    dimension_cache_size: int = Field(default=200_000, ge=1)
    marker_cache_size: int = Field(default=500_000, ge=0)
    rollup_cache_size: int = Field(default=200_000, ge=0)

    # S3, used only when the lake or the checkpoints are on S3 (`s3://bucket/prefix`; Spark
    # reaches it through s3a, the committed-files reader through pyarrow). Endpoint unset means
    # AWS; set it for MinIO or moto (`http://127.0.0.1:9000`; plain http turns TLS off).
    # Keys unset mean the default AWS credential chain (env, ~/.aws, instance/container role);
    # set both or neither. Region unset means the SDK's own resolution (AWS_REGION, ~/.aws).
    # MinIO and moto need path-style addressing (`bucket` in the path, not the host name).
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_path_style: bool = False

    # Kafka topics.
    orders_topic: str = "orders"
    dlq_topic: str = "orders.dlq"
    topic_partitions: int = Field(default=6, ge=1)
    # Replicas of each topic; unset: 3 on a cluster of 3+ brokers, else one per broker.
    topic_replication: int | None = Field(default=None, ge=1)

    # Ingestion API.
    api_port: int = 8000
    api_keys: SecretStr = SecretStr(DEV_API_KEY)  # comma-separated
    max_order_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_batch_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_batch_orders: int = Field(default=1000, ge=1)
    rate_limit: str = "20000/second"  # orders per API key, `limits` notation
    produce_timeout_s: float = Field(default=5.0, gt=0, le=30)
    producer_linger_ms: int = Field(default=5, ge=0)
    id_cache_refresh_s: float = Field(default=30.0, gt=0)

    # Dashboard (Streamlit).
    dashboard_enabled: bool = True  # whether `up` runs the dashboard
    dashboard_port: int = 8501
    dashboard_refresh_s: float = Field(default=5.0, ge=1)  # how often pages refresh themselves
    # How long the dashboard keeps a closed rollup bucket before reading it again (so a late
    # order in an old bucket shows within this).
    dashboard_cache_s: float = Field(default=60.0, ge=0)
    currency: str = Field(default="USD", min_length=3, max_length=3)  # the catalog's prices
    # Sign-in (docs/dashboard.md "Sign-in"): OpenID Connect through Streamlit's st.login. The
    # provider's discovery document (.../.well-known/openid-configuration) and this client's
    # registration there; all three, or none (then only `dev` on loopback serves it).
    dashboard_oidc_metadata_url: str | None = None
    dashboard_oidc_client_id: str | None = None
    dashboard_oidc_client_secret: SecretStr | None = None
    # The address people open (behind a proxy: its public URL); the provider redirects to
    # <this>/oauth2callback. Default: http://<host>:<dashboard_port>.
    dashboard_public_url: str | None = None
    # Signs the session cookie; unset: generated once into <data>/dashboard/cookie_secret (0600).
    dashboard_cookie_secret: SecretStr | None = None
    # Who may use it once signed in, and who sees customers' e-mail addresses unmasked:
    # comma-separated addresses or @domains. Empty: anyone the provider signs in / nobody.
    dashboard_allowed_users: str = ""
    dashboard_email_viewers: str = ""

    # Demand spikes (docs/spikes.md): the daily rule, its completeness grace, the intraday run.
    spike_lookback_days: int = Field(default=90, ge=1, le=3650)
    spike_min_history_days: int = Field(default=14, ge=1)
    spike_min_units: int = Field(default=5, ge=0)
    spike_min_orders: int = Field(default=3, ge=0)  # orders with the product on the day
    spike_margin: float = Field(default=1.3, ge=1.0)  # units > margin x P95
    # the noise test: P(orders >= the day's) under the product's own negative binomial must be
    # below alpha (0: no test); the precision/recall dial (docs/spikes.md, "The rule")
    spike_alpha: float = Field(default=3e-5, ge=0.0, lt=1.0)
    # a store event when the whole store sells above this times its usual (0: no store events)
    spike_store_margin: float = Field(default=1.3, ge=0.0)
    spike_weekday: bool = True  # weekday-aware baseline
    spike_grace_minutes: int = Field(default=30, ge=0)  # after the watermark passes the day
    # the detector's one-writer lease: a dead run's lease frees after this (a heartbeat keeps a
    # live run's); a run waits up to twice this for it
    spike_lease_ttl_s: float = Field(default=30.0, ge=3.0, le=3600.0)
    spike_emerging_every_min: int = Field(default=5, ge=1, le=59)  # the intraday DAG's schedule
    # The daily DAG's first day (catchup runs every day from it); default: 30 days before `up`.
    spike_start_date: date | None = None
    spike_catchup: bool = True  # False: after an outage, run only the latest day
    # Spike alerts (docs/spikes.md, "Alerts"): each new spike of a product and day is POSTed
    # once to this URL (unset: no alerts). A Slack webhook URL holds its token: a secret.
    spike_webhook_url: SecretStr | None = None
    spike_webhook_format: Literal["json", "slack"] = "json"
    # a POST is tried this many times, waiting backoff_s, then twice that, ... in between;
    # what still fails is retried by the next spike run (the intraday one every few minutes)
    spike_webhook_attempts: int = Field(default=4, ge=1, le=10)
    spike_webhook_backoff_s: float = Field(default=1.0, ge=0.0, le=60.0)
    spike_webhook_timeout_s: float = Field(default=5.0, gt=0.0, le=60.0)
    # alerts go out for today's and the last N days' spikes only (a backfill or a catchup of
    # older days alerts nobody), and undelivered ones are retried as long as their day is in it
    spike_webhook_max_age_days: int = Field(default=1, ge=0, le=30)

    # Airflow (its own virtualenv; metadata in the stack's PostgreSQL, database `airflow`).
    airflow_enabled: bool = True  # whether `up` runs Airflow
    airflow_port: int = 8080
    airflow_parallelism: int = Field(default=4, ge=1)
    airflow_admin_password: SecretStr = SecretStr(DEV_AIRFLOW_PASSWORD)

    # Warehouse (batch ELT, docs/warehouse.md): DuckDB embedded by default, or Snowflake.
    warehouse: Literal["duckdb", "snowflake"] = "duckdb"
    warehouse_duckdb_path: Path | None = None  # default <data>/warehouse/shopstream.duckdb
    warehouse_grace_minutes: int = Field(default=30, ge=0)  # after the watermark passes a day
    warehouse_start_date: date | None = None  # the DAG's first day (default: 30 days ago)
    warehouse_catchup: bool = True
    # a complete day's lake files rewritten as a few before its load (streaming/compaction.py)
    lake_compaction: bool = True
    # How long the file sink's log (`_spark_metadata`) names a raw file after it was written
    # (the sink's `retention`; decision 49): the log then holds the last week's ~60,000 files
    # instead of every file ever. Older days are read through their compaction manifests.
    # 0 keeps every entry (the log grows ~8,640 entries a day without end).
    lake_log_retention_hours: float = Field(default=168.0, ge=0)
    # How often the running job judges that retention again (a restart of the landing query
    # when a file nears it without a manifest, or when none does any more)
    lake_retention_check_s: float = Field(default=3600.0, gt=0)
    snowflake_account: str | None = None
    snowflake_user: str | None = None
    snowflake_password: SecretStr | None = None
    snowflake_database: str = "SHOPSTREAM"
    snowflake_warehouse: str | None = None
    snowflake_role: str | None = None
    # An S3 lake is read by Snowflake through an external stage on the lake's root (created
    # with a storage integration by an account admin); a local lake is PUT to an internal one.
    snowflake_lake_stage: str | None = None
    # Only to reach a non-standard endpoint (a private link, or fakesnow in tests).
    snowflake_host: str | None = None
    snowflake_port: int | None = None
    snowflake_protocol: Literal["https", "http"] = "https"

    @field_validator("business_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'"
            ) from None
        return value

    @model_validator(mode="after")
    def _one_clock(self) -> Settings:
        if self.clock_offset_s and self.clock_frozen_at is not None:
            raise ValueError(
                "set SHOPSTREAM_CLOCK_OFFSET_S or SHOPSTREAM_CLOCK_FROZEN_AT, not both"
            )
        return self

    @model_validator(mode="after")
    def _retention_needs_compaction(self) -> Settings:
        if self.lake_log_retention_hours and not self.lake_compaction:
            raise ValueError(
                "SHOPSTREAM_LAKE_LOG_RETENTION_HOURS drops raw files from the lake's log once "
                "they are that old, and only a compaction keeps them readable after that: with "
                "SHOPSTREAM_LAKE_COMPACTION=false set SHOPSTREAM_LAKE_LOG_RETENTION_HOURS=0 too "
                "(the log then keeps every file, growing without end)"
            )
        return self

    @property
    def lake_log_retention(self) -> timedelta | None:
        """How long the lake's log names a raw file (None: for ever)."""
        hours = self.lake_log_retention_hours
        return timedelta(hours=hours) if hours else None

    @model_validator(mode="after")
    def _distinct_kafka_ports(self) -> Settings:
        ports = [p for pair in self.kafka_node_ports for p in pair]
        if len(set(ports)) != len(ports):
            raise ValueError(
                f"SHOPSTREAM_KAFKA_PORT ({self.kafka_port}) and SHOPSTREAM_KAFKA_CONTROLLER_PORT "
                f"({self.kafka_controller_port}) give {self.kafka_brokers} Kafka nodes the same "
                "port (node i uses each + 2i): set the controller port to the Kafka port + 1"
            )
        return self

    @model_validator(mode="after")
    def _whole_sign_in(self) -> Settings:
        oidc = {
            "SHOPSTREAM_DASHBOARD_OIDC_METADATA_URL": self.dashboard_oidc_metadata_url,
            "SHOPSTREAM_DASHBOARD_OIDC_CLIENT_ID": self.dashboard_oidc_client_id,
            "SHOPSTREAM_DASHBOARD_OIDC_CLIENT_SECRET": self.dashboard_oidc_client_secret,
        }
        missing = [name for name, value in oidc.items() if not value]
        if 0 < len(missing) < len(oidc):
            raise ValueError(
                "the dashboard's sign-in needs all three of "
                + ", ".join(oidc)
                + "; missing: "
                + ", ".join(missing)
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "dev":
            return self
        problems = []
        if DEV_API_KEY in self.api_key_list:
            problems.append(
                "SHOPSTREAM_API_KEYS still holds the development placeholder; set real keys "
                "(comma-separated)"
            )
        if self.airflow_enabled and self.airflow_password_is_placeholder:
            problems.append(
                "SHOPSTREAM_AIRFLOW_ADMIN_PASSWORD is the development placeholder; set a "
                "password of your own (or SHOPSTREAM_AIRFLOW_ENABLED=false where Airflow is "
                "not run)"
            )
        if problems:
            raise ValueError(
                f"outside SHOPSTREAM_ENVIRONMENT=dev ({self.environment}): " + "; ".join(problems)
            )
        return self

    @property
    def airflow_password_is_placeholder(self) -> bool:
        return self.airflow_admin_password.get_secret_value() == DEV_AIRFLOW_PASSWORD

    @cached_property
    def api_key_list(self) -> tuple[str, ...]:
        keys = self.api_keys.get_secret_value().split(",")
        return tuple(k.strip() for k in keys if k.strip())

    @property
    def clock(self) -> Clock:
        """The clock of this configuration, in the business time zone."""
        zone = ZoneInfo(self.business_timezone)
        if self.clock_frozen_at is not None:
            return Clock.fixed(self.clock_frozen_at, zone)
        return Clock(zone, offset=timedelta(seconds=self.clock_offset_s))

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def cache_path(self) -> Path:
        return self.cache_dir.expanduser().resolve()

    @property
    def stream_ready_path(self) -> Path:
        """Where the streaming job says it has started its queries (and which process it is):
        written by the job, read by the stack's readiness probe and by tests of restarts."""
        return self.data_path / "stream" / "ready.json"

    def is_managed(self, service: Service) -> bool:
        """True when shopstream starts `service` itself rather than using a given URL."""
        external = {
            "kafka": self.kafka_bootstrap,
            "postgres": self.postgres_dsn,
            "mongo": self.mongo_uri,
        }
        return external[service] is None

    @property
    def lake(self) -> str:
        """The lake root as Spark/Hadoop addresses it (`s3://` becomes `s3a://`)."""
        uri = self.lake_uri or (self.data_path / "lake").as_uri()
        return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri

    @property
    def duckdb_path(self) -> Path:
        """The embedded warehouse's database file."""
        path = self.warehouse_duckdb_path or self.data_path / "warehouse" / "shopstream.duckdb"
        return path.expanduser().resolve()

    @property
    def checkpoints(self) -> str:
        """Where Spark keeps its checkpoints (`s3://` becomes `s3a://`, as for the lake)."""
        uri = self.checkpoint_uri or (self.data_path / "checkpoints").as_uri()
        return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri

    @property
    def kafka_node_ports(self) -> list[tuple[int, int]]:
        """(broker port, controller port) of each managed Kafka node, node 1 first."""
        return [
            (self.kafka_port + 2 * i, self.kafka_controller_port + 2 * i)
            for i in range(self.kafka_brokers)
        ]

    @property
    def kafka_servers(self) -> str:
        """The bootstrap list: the given one, or every managed broker."""
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        return ",".join(f"{self.host}:{port}" for port, _ in self.kafka_node_ports)

    @property
    def postgres_url(self) -> str:
        if self.postgres_dsn is not None:
            return self.postgres_dsn.get_secret_value()
        return f"postgresql://shopstream@{self.host}:{self.postgres_port}/shopstream"

    @property
    def mongo_url(self) -> str:
        if self.mongo_uri is not None:
            return self.mongo_uri.get_secret_value()
        return f"mongodb://{self.host}:{self.mongo_port}/"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def dashboard_url(self) -> str:
        """Where people open the dashboard (its public URL when one is set)."""
        if self.dashboard_public_url:
            return self.dashboard_public_url.rstrip("/")
        return self.dashboard_local_url

    @property
    def dashboard_local_url(self) -> str:
        """Where the dashboard's server listens (its health check, the stack's probe)."""
        return f"http://{self.host}:{self.dashboard_port}"

    def dashboard_exposure_problem(self) -> str | None:
        """Why the dashboard must not serve with these settings, or None. It shows customers'
        names, e-mails and histories: without sign-in it is served only in `dev`, on loopback."""
        if self.dashboard_sign_in:
            return None
        how = (
            "configure a sign-in provider (SHOPSTREAM_DASHBOARD_OIDC_METADATA_URL, "
            "SHOPSTREAM_DASHBOARD_OIDC_CLIENT_ID, SHOPSTREAM_DASHBOARD_OIDC_CLIENT_SECRET; "
            "docs/dashboard.md) or set SHOPSTREAM_DASHBOARD_ENABLED=false"
        )
        if self.environment != "dev":
            return f"the dashboard needs sign-in outside SHOPSTREAM_ENVIRONMENT=dev: {how}"
        if not _is_loopback(self.host):
            return (
                f"the dashboard would serve customer data without sign-in on {self.host}, "
                f"which is not a loopback address: {how}, or use SHOPSTREAM_HOST=127.0.0.1"
            )
        return None

    @property
    def dashboard_sign_in(self) -> bool:
        """Whether the dashboard asks people to sign in (a provider is configured)."""
        return self.dashboard_oidc_metadata_url is not None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (used by the CLI and tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as `SHOPSTREAM_*` variables, so child processes see the same config."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = value.expanduser().resolve()
        env[f"SHOPSTREAM_{name.upper()}"] = str(value)
    return env
