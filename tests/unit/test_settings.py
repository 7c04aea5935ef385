"""Settings: environment, placeholders, managed vs external services."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shopstream.config import DEV_API_KEY, Settings, settings_env


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SHOPSTREAM_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_manage_every_service_on_documented_ports() -> None:
    s = Settings()
    assert all(s.is_managed(svc) for svc in ("kafka", "postgres", "mongo"))
    assert s.kafka_servers == "127.0.0.1:9092"
    assert s.mongo_url == "mongodb://127.0.0.1:27017/"
    assert s.api_url == "http://127.0.0.1:8000"
    assert s.mongo_database == "shopstream"


def test_a_given_url_makes_a_service_external(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPSTREAM_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("SHOPSTREAM_MONGO_URI", "mongodb://a,b,c/?replicaSet=rs0")
    s = Settings()
    assert not s.is_managed("kafka")
    assert not s.is_managed("mongo")
    assert s.is_managed("postgres")
    assert s.kafka_servers == "k1:9092,k2:9092"
    assert s.mongo_url == "mongodb://a,b,c/?replicaSet=rs0"


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SHOPSTREAM_API_PORT=9999\nSHOPSTREAM_API_KEYS=a, b ,\n")
    s = Settings()
    assert s.api_port == 9999
    assert s.api_key_list == ("a", "b")


def test_placeholder_key_is_refused_outside_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPSTREAM_ENVIRONMENT", "prod")
    monkeypatch.setenv("SHOPSTREAM_AIRFLOW_ADMIN_PASSWORD", "a-real-password")
    with pytest.raises(ValueError, match="placeholder"):
        Settings()
    monkeypatch.setenv("SHOPSTREAM_API_KEYS", "a-real-secret")
    assert Settings().api_key_list == ("a-real-secret",)


def test_every_placeholder_is_named_in_one_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPSTREAM_ENVIRONMENT", "test")
    with pytest.raises(ValueError, match="outside SHOPSTREAM_ENVIRONMENT=dev") as refused:
        Settings()
    message = str(refused.value)
    assert "SHOPSTREAM_API_KEYS" in message
    assert "SHOPSTREAM_AIRFLOW_ADMIN_PASSWORD" in message
    monkeypatch.setenv("SHOPSTREAM_API_KEYS", "a-real-secret")
    with pytest.raises(ValueError, match="SHOPSTREAM_AIRFLOW_ADMIN_PASSWORD") as refused:
        Settings()
    assert "SHOPSTREAM_API_KEYS" not in str(refused.value)
    # Where Airflow is not run, its password is not needed.
    assert not Settings(airflow_enabled=False).airflow_enabled
    monkeypatch.setenv("SHOPSTREAM_AIRFLOW_ADMIN_PASSWORD", "another-real-secret")
    assert not Settings().airflow_password_is_placeholder


def test_placeholders_are_accepted_in_dev() -> None:
    s = Settings()
    assert s.environment == "dev"
    assert s.airflow_password_is_placeholder
    assert s.api_key_list == (DEV_API_KEY,)


def test_secrets_are_not_printed() -> None:
    s = Settings(postgres_dsn="postgresql://u:hunter2@db/x")  # type: ignore[arg-type]
    assert "hunter2" not in repr(s)
    assert DEV_API_KEY not in repr(s)


def test_the_spike_webhooks_url_is_a_secret_that_child_processes_still_get(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "https://hooks.slack.com/services/T0/B0/xoxb-token-7f"
    monkeypatch.setenv("SHOPSTREAM_SPIKE_WEBHOOK_URL", url)
    monkeypatch.setenv("SHOPSTREAM_SPIKE_WEBHOOK_FORMAT", "slack")
    s = Settings()
    assert "xoxb-token-7f" not in repr(s)
    assert s.spike_webhook_format == "slack"
    assert settings_env(s)["SHOPSTREAM_SPIKE_WEBHOOK_URL"] == url  # the DAGs' tasks need it
    monkeypatch.delenv("SHOPSTREAM_SPIKE_WEBHOOK_URL")
    assert Settings().spike_webhook_url is None  # unset: no alerts


def test_settings_env_round_trips_for_child_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(api_port=8123, kafka_bootstrap="k:1", data_dir=Path("rel/dir"))
    for key, value in settings_env(original).items():
        monkeypatch.setenv(key, value)
    child = Settings()
    assert child.api_port == 8123
    assert child.kafka_servers == "k:1"
    assert child.data_path == original.data_path
    assert child.data_path.is_absolute()


def test_a_log_retention_without_compaction_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files leave the lake's log after the retention; only compaction keeps them readable."""
    monkeypatch.setenv("SHOPSTREAM_LAKE_COMPACTION", "false")
    with pytest.raises(ValueError, match="SHOPSTREAM_LAKE_LOG_RETENTION_HOURS=0"):
        Settings()
    monkeypatch.setenv("SHOPSTREAM_LAKE_LOG_RETENTION_HOURS", "0")
    assert Settings().lake_log_retention is None
    monkeypatch.delenv("SHOPSTREAM_LAKE_COMPACTION")
    monkeypatch.setenv("SHOPSTREAM_LAKE_LOG_RETENTION_HOURS", "36")
    assert Settings().lake_log_retention == timedelta(hours=36)
