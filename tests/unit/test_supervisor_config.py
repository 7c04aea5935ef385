"""The supervisord config shopstream writes."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from shopstream.config import Settings
from shopstream.stack.services import FERRETDB_GOGC, Service, mongo_service
from shopstream.stack.supervisor import Supervisor
from shopstream.tools import install


def svc(**kw: object) -> Service:
    base: dict[str, object] = dict(
        name="kafka",
        title="Kafka",
        command=["java", "-cp", "/a b/*"],
        ports={9092: "X"},
        address="a",
        ready=lambda: None,
    )
    base.update(kw)
    return Service(**base)  # type: ignore[arg-type]


def test_programs_are_rendered_quoted_and_escaped(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    text = sup.render(
        [svc(), svc(name="postgres", command=["pg", "-c", "x=100%"], user="postgres")]
    )
    parser = configparser.ConfigParser(interpolation=configparser.BasicInterpolation())
    parser.read_string(text)
    assert parser["program:kafka"]["command"] == "java -cp '/a b/*'"
    assert parser["program:postgres"]["command"] == "pg -c x=100%"
    assert parser["program:postgres"]["user"] == "postgres"
    assert parser["program:kafka"]["autostart"] == "false"


def test_deep_data_dirs_get_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    assert len(str(Supervisor(deep).socket)) < 100
    assert Supervisor(tmp_path).socket.parent == tmp_path


def test_a_services_environment_is_rendered_for_supervisord(tmp_path: Path) -> None:
    text = Supervisor(tmp_path).render([svc(env={"GOGC": "400", "B": "x 50%"}), svc(name="p")])
    parser = configparser.ConfigParser(interpolation=configparser.BasicInterpolation())
    parser.read_string(text)
    assert parser["program:kafka"]["environment"] == 'B="x 50%",GOGC="400"'
    assert "environment" not in parser["program:p"]


def test_ferretdb_runs_with_a_lazier_collector_unless_gogc_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(install, "find_mongod", lambda: None)
    monkeypatch.delenv("GOGC", raising=False)
    assert mongo_service(settings).env == {"GOGC": FERRETDB_GOGC}
    monkeypatch.setenv("GOGC", "150")
    assert mongo_service(settings).env == {"GOGC": "150"}
    monkeypatch.setattr(install, "find_mongod", lambda: Path("/usr/bin/mongod"))
    assert mongo_service(settings).env == {}
