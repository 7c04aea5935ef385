"""Which customer and product ids exist, so unknown ones are refused at the edge.

Ids are cached in memory and refreshed incrementally from PostgreSQL; a miss is looked up
at once (read-through), so a customer who signed up a second ago is accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

__all__ = ["KnownIds"]

log = logging.getLogger(__name__)


class KnownIds:
    """The ids of one dimension table (`customers` or `products`)."""

    def __init__(self, pool: AsyncConnectionPool, table: str) -> None:
        self._pool = pool
        self.table = table
        self._table = sql.Identifier(table)
        self._ids: set[int] = set()
        self._max_id = 0

    def __len__(self) -> int:
        return len(self._ids)

    async def refresh(self) -> int:
        """Loads ids added since the last refresh; returns how many were new."""
        query = sql.SQL("SELECT id FROM {} WHERE id > %s").format(self._table)
        async with self._pool.connection() as conn:
            cur = await conn.execute(query, (self._max_id,))
            rows = await cur.fetchall()
        new = [r[0] for r in rows]
        self._ids.update(new)
        if new:
            self._max_id = max(self._max_id, max(new))
        return len(new)

    async def unknown(self, ids: Iterable[int]) -> set[int]:
        """The ids that do not exist in the table."""
        missing = {i for i in ids if i not in self._ids}
        if not missing:
            return set()
        query = sql.SQL("SELECT id FROM {} WHERE id = ANY(%s)").format(self._table)
        async with self._pool.connection() as conn:
            cur = await conn.execute(query, (list(missing),))
            found = {r[0] for r in await cur.fetchall()}
        self._ids.update(found)
        return missing - found

    async def keep_fresh(self, every_s: float) -> None:
        """Runs forever, refreshing; failures are logged and retried on the next round."""
        while True:
            await asyncio.sleep(every_s)
            try:
                added = await self.refresh()
            except Exception as exc:
                log.warning("id cache refresh failed table=%s error=%s", self.table, exc)
                continue
            if added:
                log.info("id cache refreshed table=%s added=%d", self.table, added)
