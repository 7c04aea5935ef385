"""PostgreSQL: the dimension tables (customers, products) and their versioned migrations."""

from shopstream.db.migrate import applied_versions, migrate

__all__ = ["applied_versions", "migrate"]
