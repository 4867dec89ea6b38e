"""Pooled connections the server dropped: pinged after a rest, replaced after a failure.

The server side of each connection is killed the way a restart, a failover or an
administrator would (pg_terminate_backend, KILL), while the connector's pool holds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiomysql
import asyncpg
import pytest
from backends import (
    HOST,
    MARIADB_PORT,
    POSTGRESQL_PORT,
    create_database,
    drop_database,
)

import connectors.sql.engine
from connectors.base import Kind, Unavailable
from connectors.sql import SqlConnector


@pytest.fixture(params=["postgresql", "mariadb"])
async def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The database servers only: a SQLite file has no server side to drop."""
    url = await create_database(request.param, tmp_path)
    yield url
    await drop_database(request.param, url)


async def kill_connections(url: str) -> int:
    """End every server session on the URL's database; how many there were."""
    database = url.rsplit("/", 1)[1].split("?")[0]
    if url.startswith("postgresql"):
        admin = await asyncpg.connect(host=HOST, port=POSTGRESQL_PORT, user="postgres")
        try:
            killed = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await admin.close()
        return len(killed)
    server = await aiomysql.connect(host=HOST, port=MARIADB_PORT, user="root", password="")
    try:
        async with server.cursor() as cursor:
            await cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s", (database,)
            )
            sessions = [row[0] for row in await cursor.fetchall()]
            for session in sessions:
                await cursor.execute(f"KILL {int(session)}")
    finally:
        server.close()
    return len(sessions)


async def test_a_rested_connection_is_pinged_and_replaced_when_dead(
    connector: SqlConnector, tables: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await connector.create(Kind.USERS, {"user_name": "alice"})
    assert await kill_connections(tables) >= 1
    monkeypatch.setattr(connectors.sql.engine, "IDLE_BEFORE_PING", 0.0)
    assert (await connector.get(Kind.USERS, created.id)).values["user_name"] == "alice"
    again = await connector.create(Kind.USERS, {"user_name": "bob"})
    assert (await connector.get(Kind.USERS, again.id)).values["user_name"] == "bob"


async def test_a_connection_dropped_while_in_steady_use_costs_one_request(
    connector: SqlConnector, tables: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the rest period nothing is pinged: the request that meets the dead
    connection answers 503 with Retry-After, and the pool is renewed for the next one."""
    monkeypatch.setattr(connectors.sql.engine, "IDLE_BEFORE_PING", 3600.0)
    created = await connector.create(Kind.USERS, {"user_name": "alice"})
    assert await kill_connections(tables) >= 1
    with pytest.raises(Unavailable) as raised:
        await connector.get(Kind.USERS, created.id)
    assert raised.value.retry_after == 5
    assert (await connector.get(Kind.USERS, created.id)).values["user_name"] == "alice"
