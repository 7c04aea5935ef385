"""The store's own insert ceiling, measured at the end of a `bench stream` run (issue 18).

The run's own order documents (the job wrote them: same shape, same size) are inserted again
under new `_id`s into a scratch store (database `<run's database>_ceiling`, made before the
clock starts), through the same
`OrderStore.insert_orders` the job's tasks call (unordered `insert_many` commands of
`mongo_bulk_size`, 1,000), from one client and from as many clients as the job had task slots
(two on this machine). Nothing else runs by then (the load has stopped and the job has caught
up), so this is what the store does with nothing else to do; the job's full-batch throughput
divided by it is how much of the store the job gets to use.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shopstream.config import Settings
from shopstream.store.ferretdb import open_store
from shopstream.store.protocols import Document, Store

__all__ = ["store_ceiling"]


def store_ceiling(
    settings: Settings,
    store: Store,
    order_ids: Sequence[str],
    n: int = 5000,
    clients: int = 2,
    rounds: int = 3,
) -> dict[str, Any]:
    """Orders/s of inserting `n` of the run's orders (the first `n` of `order_ids`, read from
    `store`) into an empty store (median of `rounds`), from 1 and from `clients` clients; the
    scratch store is dropped after."""
    sample = [d for d in store.orders.orders(order_ids[:n]) if d is not None]
    if len(sample) < n:
        return {"orders": len(sample), "per_s": None, "note": "too few orders to measure"}
    scratch = settings.model_copy(update={"mongo_database": f"{settings.mongo_database}_ceiling"})
    # One client per writer, connected before the clock starts (as the job's tasks are).
    writers = [open_store(scratch, app="shopstream-bench") for _ in range(max(1, clients))]
    try:
        # The store and its collection exist before the clock starts (as the job's do): a
        # few documents first, then each round inserts under new ids.
        writers[0].drop()
        writers[0].orders.insert_orders(
            [{**d, "_id": uuid.uuid4().hex} for d in sample[:10]], False
        )
        for w in writers:
            w.orders.orders(["warm-up"])
        result: dict[str, Any] = {
            "orders": n,
            "command": settings.mongo_bulk_size,
            "rounds": rounds,
        }
        for k in sorted({1, clients}):
            times = []
            for _ in range(rounds):
                docs: list[Document] = [{**d, "_id": uuid.uuid4().hex} for d in sample]
                parts = [(writers[i], docs[i::k]) for i in range(k)]
                began = time.perf_counter()
                with ThreadPoolExecutor(max_workers=k) as pool:
                    list(pool.map(lambda part: part[0].orders.insert_orders(part[1], False), parts))
                times.append(time.perf_counter() - began)
            result[f"clients_{k}"] = {
                "seconds": round(statistics.median(times), 3),
                "per_s": round(n / statistics.median(times), 1),
            }
        result["per_s"] = max(v["per_s"] for k, v in result.items() if k.startswith("clients_"))
        return result
    finally:
        writers[0].drop()
        for w in writers:
            w.close()
