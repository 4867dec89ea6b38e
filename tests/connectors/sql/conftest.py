"""A SqlConnector on the default tables, for every backend of the `sql_url` fixture."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import pytest
from backends import create_default_tables
from sql_specs import SCHEMA
from sqlalchemy.engine import make_url

from connectors.sql import SqlConnector, SqlSettings


@pytest.fixture
def empty_database(sql_url: str) -> str:
    """The URL of a fresh database without tables that exists, a SQLite file included
    (the connector refuses to open a file that does not exist, which it would create)."""
    url = make_url(sql_url)
    if url.get_backend_name() == "sqlite" and url.database:
        sqlite3.connect(url.database).close()
    return sql_url


@pytest.fixture
async def tables(sql_url: str) -> str:
    """The URL of a fresh database holding the default tables."""
    await create_default_tables(sql_url)
    return sql_url


@pytest.fixture
async def connector(tables: str) -> AsyncIterator[SqlConnector]:
    opened = SqlConnector(SqlSettings(type="sql", url=tables), SCHEMA)
    await opened.open()
    yield opened
    await opened.close()
