"""Deterministic, realistic customers and products (pure: no database).

Row `i` depends only on the seed and `i`, so a larger seed run extends a smaller one and a
rerun regenerates the same rows. Name pools come from Faker once; rows are assembled with
numpy, which keeps a million customers to seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from faker import Faker

__all__ = ["CATEGORIES", "Category", "customer_rows", "product_rows"]


@dataclass(frozen=True)
class Category:
    name: str
    nouns: tuple[str, ...]
    typical_prices: tuple[float, ...]


def _c(name: str, *items: tuple[str, float]) -> Category:
    return Category(name, tuple(n for n, _ in items), tuple(p for _, p in items))


# Categories with their products' typical prices (USD); a product's price varies around it.
CATEGORIES: tuple[Category, ...] = (
    _c(
        "Electronics",
        ("Headphones", 120),
        ("Bluetooth Speaker", 80),
        ("Smartwatch", 250),
        ("USB-C Charger", 25),
        ("Earbuds", 90),
    ),
    _c(
        "Computers",
        ("Laptop", 1100),
        ("Monitor", 280),
        ("Mechanical Keyboard", 110),
        ("Wireless Mouse", 35),
        ("SSD", 95),
    ),
    _c(
        "Phones",
        ("Smartphone", 700),
        ("Phone Case", 20),
        ("Screen Protector", 12),
        ("Power Bank", 40),
    ),
    _c(
        "Home & Kitchen",
        ("Blender", 80),
        ("Electric Kettle", 40),
        ("Skillet", 45),
        ("Knife Set", 120),
        ("Toaster", 50),
    ),
    _c(
        "Furniture",
        ("Standing Desk", 450),
        ("Office Chair", 260),
        ("Bookshelf", 150),
        ("Sofa", 900),
        ("Nightstand", 120),
    ),
    _c(
        "Garden",
        ("Garden Hose", 35),
        ("Planter", 25),
        ("Pruning Shears", 22),
        ("Lawn Mower", 320),
        ("Seed Kit", 15),
    ),
    _c(
        "Tools",
        ("Cordless Drill", 110),
        ("Screwdriver Set", 30),
        ("Wrench Set", 45),
        ("Tool Box", 60),
        ("Circular Saw", 140),
    ),
    _c(
        "Books",
        ("Novel", 16),
        ("Cookbook", 28),
        ("Biography", 22),
        ("Travel Guide", 20),
        ("Atlas", 35),
    ),
    _c(
        "Music",
        ("Vinyl Record", 28),
        ("Guitar Strings", 12),
        ("Ukulele", 70),
        ("Keyboard Stand", 40),
    ),
    _c("Movies & TV", ("Blu-ray", 20), ("Box Set", 55), ("Documentary", 18), ("Series Season", 30)),
    _c("Video Games", ("Game", 60), ("Controller", 65), ("Gaming Headset", 90), ("Gift Card", 50)),
    _c(
        "Toys",
        ("Puzzle", 18),
        ("Building Set", 55),
        ("Plush Toy", 20),
        ("Board Game", 35),
        ("RC Car", 60),
    ),
    _c(
        "Baby",
        ("Stroller", 350),
        ("Car Seat", 220),
        ("Baby Monitor", 120),
        ("Diapers", 30),
        ("Bottle Set", 25),
    ),
    _c(
        "Beauty",
        ("Serum", 35),
        ("Lipstick", 18),
        ("Face Cream", 30),
        ("Perfume", 85),
        ("Hair Dryer", 70),
    ),
    _c(
        "Health",
        ("Vitamins", 20),
        ("Thermometer", 18),
        ("First Aid Kit", 25),
        ("Bathroom Scale", 35),
    ),
    _c(
        "Grocery",
        ("Coffee Beans", 15),
        ("Olive Oil", 14),
        ("Green Tea", 8),
        ("Dark Chocolate", 5),
        ("Pasta", 3),
    ),
    _c(
        "Pet Supplies",
        ("Dog Food", 45),
        ("Cat Tree", 90),
        ("Leash", 18),
        ("Aquarium", 120),
        ("Pet Bed", 50),
    ),
    _c(
        "Sports",
        ("Yoga Mat", 30),
        ("Dumbbells", 60),
        ("Tennis Racket", 110),
        ("Football", 25),
        ("Bike Helmet", 55),
    ),
    _c(
        "Outdoors",
        ("Tent", 220),
        ("Sleeping Bag", 90),
        ("Hiking Backpack", 120),
        ("Headlamp", 30),
        ("Camping Stove", 60),
    ),
    _c(
        "Clothing",
        ("T-Shirt", 20),
        ("Jeans", 60),
        ("Rain Jacket", 110),
        ("Sweater", 55),
        ("Dress", 70),
    ),
    _c(
        "Shoes",
        ("Sneakers", 90),
        ("Boots", 140),
        ("Sandals", 40),
        ("Running Shoes", 120),
        ("Loafers", 95),
    ),
    _c(
        "Jewelry",
        ("Necklace", 120),
        ("Ring", 180),
        ("Bracelet", 80),
        ("Earrings", 60),
        ("Watch", 250),
    ),
    _c(
        "Automotive",
        ("Dash Cam", 90),
        ("Car Charger", 20),
        ("Tire Inflator", 50),
        ("Seat Covers", 60),
    ),
    _c(
        "Office",
        ("Notebook", 8),
        ("Pen Set", 15),
        ("Desk Lamp", 40),
        ("Printer Paper", 12),
        ("Stapler", 14),
    ),
    _c(
        "Arts & Crafts",
        ("Paint Set", 25),
        ("Sketchbook", 12),
        ("Yarn", 8),
        ("Brush Set", 18),
        ("Easel", 70),
    ),
)

_ADJECTIVES = (
    "Classic",
    "Pro",
    "Ultra",
    "Compact",
    "Premium",
    "Eco",
    "Smart",
    "Deluxe",
    "Essential",
    "Advanced",
    "Lite",
    "Max",
    "Vintage",
    "Modern",
    "Portable",
    "Rugged",
    "Signature",
    "Air",
)

# (city, ISO country, relative weight): where simulated customers live.
_CITIES = (
    ("New York", "US", 18),
    ("Los Angeles", "US", 9),
    ("Chicago", "US", 6),
    ("Houston", "US", 5),
    ("Toronto", "CA", 6),
    ("Vancouver", "CA", 3),
    ("Mexico City", "MX", 7),
    ("São Paulo", "BR", 8),
    ("London", "GB", 10),
    ("Manchester", "GB", 3),
    ("Paris", "FR", 8),
    ("Lyon", "FR", 2),
    ("Berlin", "DE", 7),
    ("Munich", "DE", 3),
    ("Madrid", "ES", 5),
    ("Barcelona", "ES", 4),
    ("Rome", "IT", 4),
    ("Milan", "IT", 4),
    ("Amsterdam", "NL", 3),
    ("Stockholm", "SE", 2),
    ("Warsaw", "PL", 3),
    ("Istanbul", "TR", 6),
    ("Cairo", "EG", 4),
    ("Lagos", "NG", 5),
    ("Nairobi", "KE", 2),
    ("Mumbai", "IN", 9),
    ("Bangalore", "IN", 6),
    ("Singapore", "SG", 3),
    ("Tokyo", "JP", 10),
    ("Osaka", "JP", 4),
    ("Seoul", "KR", 6),
    ("Sydney", "AU", 4),
    ("Melbourne", "AU", 3),
    ("Auckland", "NZ", 1),
    ("Jakarta", "ID", 5),
    ("Manila", "PH", 4),
)
_SEGMENTS = (("consumer", 0.82), ("small_business", 0.13), ("corporate", 0.05))
_SIGNUP_SPAN = timedelta(days=3 * 365)
_POOL = 512
_CHUNK = 10_000


@dataclass(frozen=True)
class _Pools:
    first: list[str]
    last: list[str]
    brands: list[str]
    domains: list[str]


def _pools(seed: int) -> _Pools:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    suffixes = ("", " Labs", " & Co", " Works", " Goods")
    brands = sorted({fake.last_name() + suffixes[i % len(suffixes)] for i in range(_POOL // 4)})
    return _Pools(
        first=[fake.first_name() for _ in range(_POOL)],
        last=[fake.last_name() for _ in range(_POOL)],
        brands=brands,
        domains=["example.com", "example.net", "example.org", "mail.example", "shop.example"],
    )


def _rng(seed: int, kind: int, start: int) -> np.random.Generator:
    # A stream per (seed, table, chunk): rows do not depend on how the work is chunked.
    return np.random.default_rng([seed, kind, start])


def customer_rows(
    seed: int, start: int, stop: int, now: datetime | None = None
) -> Iterator[tuple[object, ...]]:
    """Customers `start+1 .. stop` as (id, name, email, city, country, segment, signup_at)."""
    pools = _pools(seed)
    now = (now or datetime(2026, 1, 1, tzinfo=UTC)).astimezone(UTC)
    weights = np.array([c[2] for c in _CITIES], dtype=float)
    seg_p = np.array([s[1] for s in _SEGMENTS])
    for chunk in range(start, stop, _CHUNK):
        n = _CHUNK  # always draw a whole chunk, so row i never depends on `stop`
        rng = _rng(seed, 1, chunk)
        first = rng.integers(0, len(pools.first), n)
        last = rng.integers(0, len(pools.last), n)
        city = rng.choice(len(_CITIES), n, p=weights / weights.sum())
        seg = rng.choice(len(_SEGMENTS), n, p=seg_p)
        age = rng.random(n) * _SIGNUP_SPAN.total_seconds()
        dom = rng.integers(0, len(pools.domains), n)
        for k in range(min(n, stop - chunk)):
            cid = chunk + k + 1
            f, la = pools.first[first[k]], pools.last[last[k]]
            c_name, c_country, _ = _CITIES[city[k]]
            yield (
                cid,
                f"{f} {la}",
                f"{f}.{la}.{cid}@{pools.domains[dom[k]]}".lower(),
                c_name,
                c_country,
                _SEGMENTS[seg[k]][0],
                now - timedelta(seconds=float(age[k])),
            )


def product_rows(seed: int, start: int, stop: int) -> Iterator[tuple[object, ...]]:
    """Products `start+1 .. stop` as (id, name, category, brand, price, popularity).

    `popularity` is a score in 1..1,000,000 drawn so that every category has popular and
    obscure products; the simulator's Zipf demand follows its rank (highest score first).
    """
    pools = _pools(seed)
    for chunk in range(start, stop, _CHUNK):
        n = _CHUNK
        rng = _rng(seed, 2, chunk)
        cat = rng.integers(0, len(CATEGORIES), n)
        adj = rng.integers(0, len(_ADJECTIVES), n)
        brand = rng.integers(0, len(pools.brands), n)
        noun = rng.integers(0, 1_000_000, n)
        price_factor = rng.lognormal(0.0, 0.3, n)
        score = rng.integers(1, 1_000_001, n)
        for k in range(min(n, stop - chunk)):
            pid = chunk + k + 1
            c = CATEGORIES[cat[k]]
            j = noun[k] % len(c.nouns)
            # Prices end in .99 or .49 like shop prices do.
            price = max(
                0.99, np.floor(c.typical_prices[j] * price_factor[k]) + (0.99 if k % 3 else 0.49)
            )
            name = f"{pools.brands[brand[k]]} {_ADJECTIVES[adj[k]]} {c.nouns[j]} {pid % 97 + 1}"
            yield pid, name, c.name, pools.brands[brand[k]], float(price), int(score[k])
