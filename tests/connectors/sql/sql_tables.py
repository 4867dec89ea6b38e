"""Tables of a test's own, made on the `sql_url` fixture's database, and a connector on them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.base import BackendSchema
from connectors.sql import SqlConnector, SqlSettings
from connectors.sql.caseless import on_sqlite


async def create_tables(url: str, metadata: sa.MetaData) -> None:
    engine = on_sqlite(create_async_engine(url))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    await engine.dispose()


@asynccontextmanager
async def connector_on(
    url: str, metadata: sa.MetaData, schema: BackendSchema
) -> AsyncIterator[SqlConnector]:
    """An open connector on `metadata`'s tables, made first; its mapping checked clean."""
    await create_tables(url, metadata)
    connector = SqlConnector(SqlSettings(type="sql", url=url), schema)
    await connector.open()
    try:
        assert await connector.verify() == []
        yield connector
    finally:
        await connector.close()
