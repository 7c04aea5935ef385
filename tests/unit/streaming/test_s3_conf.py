"""S3 settings -> Spark's s3a confs and pyarrow's filesystem, and the s3a jar pins (no Spark)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pyarrow.fs as pafs
import pyspark
import pytest

from shopstream.config import Settings, get_settings
from shopstream.streaming.committed import filesystem_for
from shopstream.streaming.session import local_fs_conf, s3a_conf, uses_s3a
from shopstream.tools.install import AWS_SDK_VERSION, HADOOP_VERSION, _pom

P = "spark.hadoop.fs.s3a."


@pytest.fixture(autouse=True)
def no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env


def moto(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "lake_uri": "s3://lake/prefix",
        "s3_endpoint": "http://127.0.0.1:5000",
        "s3_region": "us-east-1",
        "s3_access_key_id": "test",
        "s3_secret_access_key": "secret",
        "s3_path_style": True,
    }
    return get_settings(**{**values, **overrides})


def test_a_local_http_endpoint_with_keys_gives_the_confs_verified_against_moto() -> None:
    assert s3a_conf(moto()) == {
        P + "endpoint": "http://127.0.0.1:5000",
        P + "endpoint.region": "us-east-1",
        P + "path.style.access": "true",
        P + "connection.ssl.enabled": "false",
        P + "access.key": "test",
        P + "secret.key": "secret",
        P + "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    }


def test_aws_defaults_use_the_sdk_credential_chain_and_set_no_endpoint() -> None:
    conf = s3a_conf(get_settings(lake_uri="s3://lake/prefix"))
    assert conf == {
        P + "path.style.access": "false",
        P + "aws.credentials.provider": (
            "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"
        ),
    }


def test_an_https_endpoint_keeps_tls_on() -> None:
    conf = s3a_conf(moto(s3_endpoint="https://minio.internal:9000"))
    assert conf[P + "endpoint"] == "https://minio.internal:9000"
    assert P + "connection.ssl.enabled" not in conf


def test_the_secret_is_read_from_the_environment_and_kept_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPSTREAM_S3_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("SHOPSTREAM_S3_SECRET_ACCESS_KEY", "wJalrXUtnFEMI")
    monkeypatch.setenv("SHOPSTREAM_S3_PATH_STYLE", "true")
    settings = Settings()
    assert "wJalrXUtnFEMI" not in repr(settings)
    conf = s3a_conf(settings)
    assert conf[P + "access.key"] == "AKIDEXAMPLE"
    assert conf[P + "secret.key"] == "wJalrXUtnFEMI"
    assert conf[P + "path.style.access"] == "true"


@pytest.mark.parametrize("missing", ["s3_access_key_id", "s3_secret_access_key"])
def test_half_a_key_pair_is_refused(missing: str) -> None:
    with pytest.raises(ValueError, match="set both"):
        s3a_conf(moto(**{missing: None}))


def test_only_an_s3_lake_or_s3a_checkpoints_need_the_s3a_jars() -> None:
    assert not uses_s3a(get_settings())
    assert uses_s3a(get_settings(lake_uri="s3://lake/prefix"))  # the lake maps s3 -> s3a
    assert uses_s3a(get_settings(checkpoint_uri="s3a://lake/checkpoints"))
    checkpoints = get_settings(checkpoint_uri="s3://lake/checkpoints")
    assert uses_s3a(checkpoints)
    assert checkpoints.checkpoints == "s3a://lake/checkpoints"  # Hadoop has no s3:// filesystem


def test_the_reader_opens_s3a_paths_with_the_settings_endpoint() -> None:
    fs, path = filesystem_for("s3a://lake/prefix/orders/dt=2026-11-20/part-0.parquet", moto())
    assert isinstance(fs, pafs.S3FileSystem)
    assert path == "lake/prefix/orders/dt=2026-11-20/part-0.parquet"
    assert fs.region == "us-east-1"


@pytest.mark.parametrize(
    "uri",
    ["file:/lake/orders/dt=2026-11-20/p.parquet", "file:///lake/orders/dt=2026-11-20/p.parquet",
     "/lake/orders/dt=2026-11-20/p.parquet"],
)  # fmt: skip
def test_the_reader_opens_every_spelling_of_a_local_path(uri: str) -> None:
    fs, path = filesystem_for(uri)  # Hadoop writes file:/x; pathlib's as_uri file:///x
    assert isinstance(fs, pafs.LocalFileSystem)
    assert path == "/lake/orders/dt=2026-11-20/p.parquet"


def test_hadoop_aws_matches_the_hadoop_in_the_pyspark_wheel() -> None:
    jars = Path(pyspark.__file__).parent / "jars"
    assert (jars / f"hadoop-client-api-{HADOOP_VERSION}.jar").exists()


def test_the_s3a_pom_pins_every_jar_and_excludes_transitive_ones() -> None:
    text = _pom("s3a-pom.xml", HADOOP_VERSION=HADOOP_VERSION, AWS_SDK_VERSION=AWS_SDK_VERSION)
    assert not re.search(r"@[A-Z_]+@", text)
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.fromstring(text)  # noqa: S314 (our own pom, not untrusted input)
    deps = root.findall("m:dependencies/m:dependency", ns)
    coords = {
        f"{d.findtext('m:groupId', namespaces=ns)}:{d.findtext('m:artifactId', namespaces=ns)}": (
            d.findtext("m:version", namespaces=ns)
        )
        for d in deps
    }
    assert coords["org.apache.hadoop:hadoop-aws"] == HADOOP_VERSION
    assert coords["software.amazon.awssdk:bundle"] == AWS_SDK_VERSION == "2.35.4"
    assert coords["software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3"] == "1.3.1"
    for dep in deps:
        exclusion = dep.find("m:exclusions/m:exclusion", ns)
        assert exclusion is not None
        assert exclusion.findtext("m:groupId", namespaces=ns) == "*"
        assert exclusion.findtext("m:artifactId", namespaces=ns) == "*"


def test_local_checkpoints_are_written_without_a_process_per_file() -> None:
    conf = local_fs_conf(get_settings())  # the default: checkpoints under the data directory
    assert conf["spark.hadoop.fs.file.impl"] == "org.apache.hadoop.fs.RawLocalFileSystem"
    manager = conf["spark.sql.streaming.checkpointFileManagerClass"]
    jar = next(Path(pyspark.__file__).parent.joinpath("jars").glob("spark-sql_*.jar"))
    with zipfile.ZipFile(jar) as z:  # the class exists in the Spark we ship
        assert manager.replace(".", "/") + ".class" in z.namelist()
    assert local_fs_conf(get_settings(checkpoint_uri="s3a://lake/checkpoints")) == {}
