"""The batch branch: each lake day loaded into the warehouse, reconciled, modelled by dbt.

`open_warehouse(settings)` is the one place the backend is chosen (`SHOPSTREAM_WAREHOUSE`:
`duckdb`, embedded, or `snowflake`). docs/warehouse.md describes the tables and the DAG.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shopstream.config import Settings
from shopstream.warehouse.base import Warehouse, WarehouseError
from shopstream.warehouse.duckdb_store import DuckDBWarehouse

__all__ = ["Warehouse", "WarehouseError", "open_warehouse"]


@contextmanager
def open_warehouse(settings: Settings) -> Iterator[Warehouse]:
    """A connection to the configured warehouse, closed on exit."""
    wh: Warehouse
    if settings.warehouse == "snowflake":
        # Only when chosen: the Snowflake connector costs 0.35 s at import.
        from shopstream.warehouse.snowflake_store import SnowflakeWarehouse

        wh = SnowflakeWarehouse(settings)
    else:
        wh = DuckDBWarehouse(settings)
    try:
        yield wh
    finally:
        wh.close()
