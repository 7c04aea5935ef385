"""The supervisord config shopstream writes."""

from __future__ import annotations

import configparser
from pathlib import Path

from shopstream.stack.services import Service
from shopstream.stack.supervisor import Supervisor


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
