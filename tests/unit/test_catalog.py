"""The simulated catalog and customers: realistic, deterministic, extendable."""

from __future__ import annotations

import re

from shopstream.simulator.catalog import CATEGORIES, customer_rows, product_rows


def test_same_seed_same_rows_and_a_bigger_run_extends_a_smaller_one() -> None:
    small = list(product_rows(7, 0, 500))
    big = list(product_rows(7, 0, 25_000))
    assert small == big[:500]
    assert list(product_rows(8, 0, 500)) != small
    assert list(customer_rows(7, 0, 300)) == list(customer_rows(7, 0, 20_000))[:300]


def test_products_are_plausible() -> None:
    rows = list(product_rows(1, 0, 5_000))
    assert [r[0] for r in rows] == list(range(1, 5_001))
    categories = {r[2] for r in rows}
    assert len(categories) == len(CATEGORIES) >= 20
    prices = [r[4] for r in rows]
    assert min(prices) >= 0.99
    # Prices follow the product type: laptops cost more than pasta.
    laptops = [r[4] for r in rows if "Laptop" in r[1]]
    pasta = [r[4] for r in rows if "Pasta" in r[1]]
    assert min(laptops) > max(pasta)
    assert all(1 <= r[5] <= 1_000_000 for r in rows)


def test_customers_are_plausible() -> None:
    rows = list(customer_rows(1, 0, 2_000))
    emails = [r[2] for r in rows]
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z.'-]+\.\d+@[a-z.]+", e) for e in emails)
    assert {r[5] for r in rows} == {"consumer", "small_business", "corporate"}
    assert all(len(r[4]) == 2 for r in rows)
    segments = [r[5] for r in rows]
    assert segments.count("consumer") > segments.count("corporate") * 5
