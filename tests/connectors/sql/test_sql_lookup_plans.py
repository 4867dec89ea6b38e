"""Lookups stay index lookups while a table grows from empty, as during an initial sync.

PostgreSQL is asked how many rows it read: a lookup of a user that does not exist yet must
not read the table (a plan made while the table was small, or one that walks the primary
key for ORDER BY ... LIMIT, would read all of it, every time).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from backends import HOST, POSTGRESQL_PORT, create_database, drop_database
from sql_specs import SCHEMA

from connectors.base import Compare, Kind, Op, Query
from connectors.sql import SqlConnector, SqlSettings

ROWS = 5000


@pytest.fixture
async def sql_url(tmp_path: Path) -> AsyncIterator[str]:
    url = await create_database("postgresql", tmp_path)
    yield url
    await drop_database("postgresql", url)


async def rows_read(database: asyncpg.Connection, name: str) -> int:
    """Rows the users table gave to scans, sequential or by index, once every other
    session of the database has ended (a session reports its statistics when it ends)."""
    while await database.fetchval(  # noqa: ASYNC110 (no event tells of a session's end)
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        name,
    ):
        await asyncio.sleep(0.05)
    await database.execute("SELECT pg_stat_clear_snapshot()")
    read = await database.fetchval(
        "SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables "
        "WHERE relname = 'users'"
    )
    return int(read)


@pytest.mark.parametrize(
    "analyzed",
    [
        # No statistics at all: with ORDER BY key and a LIMIT, PostgreSQL would walk the
        # primary key, looking for a row it expects to meet early.
        pytest.param(False, id="never-analyzed"),
        # Statistics of a small table: a generic plan made then (a sequential scan) would
        # be kept by each connection's prepared statement for good.
        pytest.param(True, id="analyzed-while-small"),
    ],
)
async def test_a_lookup_reads_no_table_after_it_has_grown(tables: str, analyzed: bool) -> None:
    name = tables.rsplit("/", 1)[1]
    database = await asyncpg.connect(
        host=HOST, port=POSTGRESQL_PORT, user="postgres", database=name
    )
    connector = SqlConnector(SqlSettings(type="sql", url=tables), SCHEMA)
    await connector.open()
    try:
        if analyzed:  # as autovacuum does after a table's first 50 rows
            await database.execute(
                "INSERT INTO users (user_name) SELECT 'first-' || n FROM generate_series(1, 60) n"
            )
            await database.execute("ANALYZE users")
        for n in range(10):  # statements prepared and run while the table is small
            missing = Query(where=Compare("user_name", Op.EQ, f"early-{n}"), limit=100)
            assert (await connector.search(Kind.USERS, missing)).total == 0
        await database.execute(
            "INSERT INTO users (user_name) SELECT 'user-' || n FROM generate_series(1, $1) n",
            ROWS,
        )
        for n in range(20):  # the same statements, on the same connections
            missing = Query(where=Compare("user_name", Op.EQ, f"absent-{n}"), limit=100)
            assert (await connector.search(Kind.USERS, missing)).total == 0
        found = await connector.search(
            Kind.USERS, Query(where=Compare("user_name", Op.EQ, "USER-42"), limit=100)
        )
        assert [record.values["user_name"] for record in found.records] == ["user-42"]
    finally:
        await connector.close()
    try:
        assert await rows_read(database, name) < ROWS  # not the whole table, ever
    finally:
        await database.close()
