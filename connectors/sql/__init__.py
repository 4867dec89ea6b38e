"""SCIM users and groups in existing SQL tables (SQLite, PostgreSQL, MariaDB/MySQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sql.settings import SqlSettings

if TYPE_CHECKING:
    from connectors.sql.connector import SqlConnector

__all__ = ["SqlConnector", "SqlSettings"]


def __getattr__(name: str) -> Any:
    """The connector is imported when first asked for (PEP 562): it loads SQLAlchemy and
    the database drivers, some 20 MB per process that a service on a directory never uses.
    """
    if name == "SqlConnector":
        from connectors.sql.connector import SqlConnector

        return SqlConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
