"""Fetches what the managed services need, once, into the cache directory.

- Kafka: the official `org.apache.kafka:kafka_2.13` jars from Maven Central, via `mvn`.
- Spark: the connector jars the pyspark wheel lacks, the same way; the s3a jars only when
  S3 is used (they are ~690 MB).
- FerretDB (when no `mongod` is on PATH): built from the Go module proxy's source, patched.
- PostgreSQL: the machine's server binaries (`apt-get install postgresql` when absent).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

__all__ = [
    "AWS_SDK_VERSION",
    "FERRETDB_VERSION",
    "HADOOP_VERSION",
    "KAFKA_VERSION",
    "SPARK_VERSION",
    "InstallError",
    "ensure_ferretdb",
    "ensure_kafka",
    "ensure_s3a_jars",
    "ensure_spark_jars",
    "ferretdb_binary",
    "find_mongod",
    "kafka_libs_dir",
    "postgres_bindir",
    "s3a_jars_dir",
    "spark_jars_dir",
]

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
SPARK_VERSION = "4.2.0"  # must equal the pinned pyspark (pyproject.toml)
HADOOP_VERSION = "3.5.0"  # must equal that wheel's pyspark/jars/hadoop-client-api-*.jar
AWS_SDK_VERSION = "2.35.4"  # what hadoop-aws HADOOP_VERSION declares
FERRETDB_VERSION = "v1.24.2"
FERRETDB_BUILD = "s1"  # bump when the patch or build changes: a new binary is built
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"


class InstallError(RuntimeError):
    """A component could not be installed; the message says what to do."""


def _run(
    cmd: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> None:
    if shutil.which(cmd[0]) is None:
        raise InstallError(f"{what} needs `{cmd[0]}` on PATH; install it and retry")
    log.info("%s: %s", what, " ".join(cmd))
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise InstallError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def kafka_libs_dir(cache: Path, version: str = KAFKA_VERSION) -> Path:
    return cache / "kafka" / version / "libs"


def spark_jars_dir(cache: Path, version: str = SPARK_VERSION) -> Path:
    return cache / "spark" / version / "jars"


def ensure_kafka(cache: Path, version: str = KAFKA_VERSION) -> Path:
    """The directory of Kafka's broker jars, fetched with Maven on first use."""
    pom = _pom("kafka-pom.xml", KAFKA_VERSION=version)
    return _maven_fetch(pom, kafka_libs_dir(cache, version), f"Kafka {version}")


def ensure_spark_jars(cache: Path, version: str = SPARK_VERSION) -> list[Path]:
    """The connector jars Spark needs beyond the pyspark wheel, fetched with Maven once."""
    pom = _pom("spark-pom.xml", SPARK_VERSION=version)
    folder = _maven_fetch(pom, spark_jars_dir(cache, version), f"Spark {version} connectors")
    return sorted(folder.glob("*.jar"))


def s3a_jars_dir(cache: Path, version: str = SPARK_VERSION) -> Path:
    return cache / "spark" / version / "s3a-jars"


def ensure_s3a_jars(cache: Path, report: Callable[[str], None] | None = None) -> list[Path]:
    """hadoop-aws and the AWS SDK bundle for `s3a://`, fetched with Maven on first use only.

    `report` is told before the (large, one-time) download starts; by default it is logged.
    """
    target = s3a_jars_dir(cache)
    if not (target / ".complete").exists():
        (report or log.warning)(
            f"fetching the s3a jars (hadoop-aws {HADOOP_VERSION}, AWS SDK bundle "
            f"{AWS_SDK_VERSION}) from Maven Central into {target}: about 690 MB, once; "
            "this can take a few minutes ..."
        )
    pom = _pom("s3a-pom.xml", HADOOP_VERSION=HADOOP_VERSION, AWS_SDK_VERSION=AWS_SDK_VERSION)
    folder = _maven_fetch(pom, target, f"s3a jars for Hadoop {HADOOP_VERSION}")
    return sorted(folder.glob("*.jar"))


def _pom(name: str, **values: str) -> str:
    text = resources.files("shopstream.tools").joinpath(name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def _maven_fetch(pom: str, target: Path, what: str) -> Path:
    """Resolves `pom`'s runtime dependencies into `target`, once per pom (`.complete` holds
    the pom's digest, so a changed pom fetches again)."""
    done = target / ".complete"
    digest = hashlib.sha256(pom.encode()).hexdigest()
    if done.exists() and done.read_text().strip() == digest:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "pom.xml").write_text(pom)
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            "mvn",
            "-B",
            "-q",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        _run(cmd, f"{what} (Maven Central)", cwd=Path(tmp))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    done.write_text(digest)
    return target


def find_mongod() -> Path | None:
    found = shutil.which("mongod")
    return Path(found) if found else None


def ferretdb_binary(cache: Path, version: str = FERRETDB_VERSION) -> Path:
    return cache / "bin" / f"ferretdb-{version}-{FERRETDB_BUILD}"


def ensure_ferretdb(cache: Path, version: str = FERRETDB_VERSION) -> Path:
    """The FerretDB binary, built from the Go module proxy's source on first use.

    Plain `go install ...@version` builds a binary that panics at start: the module zip
    lacks the generated `build/version/version.txt`. So the module is downloaded, the file
    written, our patch applied (see `ferretdb-<version>.patch` and docs/decisions.md), and
    the command built with `go build`.
    """
    binary = ferretdb_binary(cache, version)
    if binary.exists():
        return binary
    env = {
        **os.environ,
        "CGO_ENABLED": os.environ.get("CGO_ENABLED", "0"),
        "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=mod -buildvcs=false".strip(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        module_dir = _go_module_dir(f"{FERRETDB_MODULE}@{version}", Path(tmp), env)
        src = Path(tmp) / "src"
        shutil.copytree(module_dir, src)
        for path in [src, *src.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only
        (src / "build" / "version" / "version.txt").write_text(version + "\n")
        (src / "build" / "version" / "package.txt").write_text(f"shopstream-{FERRETDB_BUILD}\n")
        patch = resources.files("shopstream.tools").joinpath(f"ferretdb-{version}.patch")
        _run(
            ["patch", "-p1", "--forward", "--no-backup-if-mismatch", "-i", str(patch)],
            "patching FerretDB",
            cwd=src,
        )
        out = Path(tmp) / "ferretdb"
        _run(
            ["go", "build", "-trimpath", "-o", str(out), "./cmd/ferretdb"],
            f"building FerretDB {version}",
            env=env,
            cwd=src,
        )
        _run([str(out), "--version"], "checking the FerretDB build")
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out), binary)
    return binary


def _go_module_dir(module: str, cwd: Path, env: dict[str, str]) -> Path:
    if shutil.which("go") is None:
        raise InstallError("building FerretDB needs Go (`go` on PATH); install it and retry")
    proc = subprocess.run(
        ["go", "mod", "download", "-json", module],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise InstallError(f"downloading {module} failed:\n{proc.stdout}{proc.stderr}")
    return Path(json.loads(proc.stdout)["Dir"])


def postgres_bindir() -> Path:
    """The bin directory of the newest PostgreSQL server on this machine."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise InstallError(
        "no PostgreSQL server binaries found; run `make install` (it apt-installs "
        "`postgresql`) or set SHOPSTREAM_POSTGRES_DSN to an existing server"
    )
