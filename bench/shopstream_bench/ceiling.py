"""The store's own insert ceiling, measured at the end of a `bench stream` run (issue 18).

The run's own order documents (the job wrote them: same shape, same size) are inserted again
under new `_id`s into a scratch collection of the run's database: a bare loop of unordered
`insert_many` commands of 1,000, as the job's tasks write them, from one client and from as many
clients as the job had task slots (two on this machine). Nothing else runs by then (the load has
stopped and the job has caught up), so this is what the store does with nothing else to do; the
job's full-batch throughput divided by it is how much of the store the job gets to use.
"""

from __future__ import annotations

import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pymongo.collection import Collection

from shopstream.domain.documents import ORDERS
from shopstream.store.client import Client, connect

__all__ = ["store_ceiling"]

_SCRATCH = "bench_insert_ceiling"


def _insert(coll: Collection[dict[str, Any]], docs: list[dict[str, Any]]) -> None:
    for start in range(0, len(docs), 1000):
        coll.insert_many(docs[start : start + 1000], ordered=False)


def store_ceiling(
    url: str, database: str, n: int = 5000, clients: int = 2, rounds: int = 3
) -> dict[str, Any]:
    """Orders/s of a bare `insert_many` loop of `n` of the run's order documents (median of
    `rounds`), from 1 and from `clients` clients; the scratch collection is dropped after."""
    client = connect(url)
    db = client[database]
    # One client per writer, connected before the clock starts (as the job's tasks are).
    writers: list[Client] = [connect(url) for _ in range(max(1, clients))]
    try:
        sample = list(db[ORDERS].find({}, limit=n))
        if len(sample) < n:
            return {"orders": len(sample), "per_s": None, "note": "too few orders to measure"}
        for w in writers:
            w.admin.command("ping")
        result: dict[str, Any] = {"orders": n, "command": 1000, "rounds": rounds}
        for k in sorted({1, clients}):
            times = []
            for _ in range(rounds):
                db.drop_collection(_SCRATCH)
                docs = [{**d, "_id": uuid.uuid4().hex} for d in sample]
                parts = [(writers[i][database][_SCRATCH], docs[i::k]) for i in range(k)]
                began = time.perf_counter()
                with ThreadPoolExecutor(max_workers=k) as pool:
                    list(pool.map(lambda part: _insert(*part), parts))
                times.append(time.perf_counter() - began)
            result[f"clients_{k}"] = {
                "seconds": round(statistics.median(times), 3),
                "per_s": round(n / statistics.median(times), 1),
            }
        result["per_s"] = max(v["per_s"] for k, v in result.items() if k.startswith("clients_"))
        return result
    finally:
        db.drop_collection(_SCRATCH)
        for w in writers:
            w.close()
        client.close()
