"""Customer search in the real PostgreSQL: prefixes served by an index, input never code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from shopstream.config import Settings
from shopstream.store.customer_pages import MAX_QUERY, search

pytestmark = pytest.mark.integration

PEOPLE = [
    ("Zoë Ærøskøbing", "zoe@example.dk"),
    ("山田 太郎", "yamada@example.jp"),
    ("Ольга Петрова", "olga@example.ru"),
    ("100% Real_Name", "percent@example.com"),
    ("O'Brien Kate", "kate.obrien@example.ie"),
]


@pytest.fixture(scope="module")
def conn(stack: Settings) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(stack.postgres_url, autocommit=True) as c:
        ids = []
        for name, email in PEOPLE:
            row = c.execute(
                "INSERT INTO customers (name, email, city, country, segment, signup_at) "
                "VALUES (%s, %s, 'Testville', 'DK', 'consumer', now()) RETURNING id",
                (name, email),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
        yield c
        c.execute("DELETE FROM customers WHERE id = ANY(%s)", (ids,))


def names(conn: psycopg.Connection[Any], text: str) -> list[str]:
    return [m.name for m in search(conn, text)]


def test_prefixes_of_names_and_emails_find_customers_in_any_case_and_script(
    conn: psycopg.Connection[Any],
) -> None:
    assert names(conn, "zoë") == ["Zoë Ærøskøbing"]
    assert names(conn, "ZOË Æ") == ["Zoë Ærøskøbing"]
    assert names(conn, "山田") == ["山田 太郎"]
    assert names(conn, "ольга") == ["Ольга Петрова"]
    assert names(conn, "kate.obr") == ["O'Brien Kate"]  # by email
    assert names(conn, "o'brien") == ["O'Brien Kate"]
    assert names(conn, "100% real_") == ["100% Real_Name"]  # wildcards taken literally


def test_an_id_finds_its_customer_first(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute("SELECT id, name FROM customers ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    found = search(conn, str(row[0]))
    assert found[0].id == row[0]
    assert found[0].name == row[1]


@pytest.mark.parametrize(
    "hostile",
    ['{"$ne": null}', ".*", "%", "_", "%%", "\\", "'; DROP TABLE customers; --", "a" * 5000,
     "x" * (MAX_QUERY + 1), "   ", "", "0", "-1", "99999999999999999999999"],
)  # fmt: skip
def test_hostile_input_is_only_data(conn: psycopg.Connection[Any], hostile: str) -> None:
    assert search(conn, hostile) == []
    (count,) = conn.execute("SELECT count(*) FROM customers").fetchone()  # type: ignore[misc]
    assert count >= len(PEOPLE)  # the table is still there


def test_the_prefix_search_uses_its_index(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")  # a small table would be scanned anyway
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM customers WHERE lower(name) LIKE 'zo%' ESCAPE '\\'"
            )
        )
    assert "customers_name_prefix" in plan
