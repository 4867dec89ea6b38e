"""A SqlConnector on the default tables, for every backend of the `sql_url` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from backends import create_default_tables
from sql_specs import SCHEMA

from connectors.sql import SqlConnector, SqlSettings


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
