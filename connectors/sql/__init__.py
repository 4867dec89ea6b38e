"""SCIM users and groups in existing SQL tables (SQLite, PostgreSQL, MariaDB/MySQL)."""

from connectors.sql.connector import SqlConnector
from connectors.sql.settings import SqlSettings

__all__ = ["SqlConnector", "SqlSettings"]
