"""Fresh, empty databases on real servers, one per test, dropped afterwards.

PostgreSQL on 127.0.0.1:5432 (user postgres, trust authentication) and MariaDB on
127.0.0.1:3306 (root, empty password); SQLite is a file in the test's tmp_path. A server
that cannot be reached skips its tests, or fails them when CI=true.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import NoReturn

import aiomysql
import asyncpg
from required import missing
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.sql.caseless import on_sqlite
from connectors.sql.embedded import default_metadata

BACKENDS = ("sqlite", "postgresql", "mariadb")
HOST = "127.0.0.1"
POSTGRESQL_PORT = 5432
MARIADB_PORT = 3306
_SERVERS = {"postgresql": ("PostgreSQL", POSTGRESQL_PORT), "mariadb": ("MariaDB", MARIADB_PORT)}


def database_name() -> str:
    """Unique per test and per run, so that parallel runs never share a database."""
    return f"scimbridge_{uuid.uuid4().hex}"


def _unreachable(backend: str) -> NoReturn:
    product, port = _SERVERS[backend]
    missing(f"{product} is not reachable on {HOST}:{port}", "start it")


async def create_database(backend: str, directory: Path) -> str:
    """Create an empty database and return its SQLAlchemy async URL."""
    name = database_name()
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{directory / name}.db"
    try:
        if backend == "postgresql":
            connection = await asyncpg.connect(
                host=HOST, port=POSTGRESQL_PORT, user="postgres", database="postgres", timeout=5
            )
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()
            return f"postgresql+asyncpg://postgres@{HOST}:{POSTGRESQL_PORT}/{name}"
        server = await aiomysql.connect(
            host=HOST, port=MARIADB_PORT, user="root", password="", connect_timeout=5
        )
    except (OSError, TimeoutError, aiomysql.OperationalError):
        _unreachable(backend)
    try:
        async with server.cursor() as cursor:
            await cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        server.close()
    return f"mysql+aiomysql://root@{HOST}:{MARIADB_PORT}/{name}?charset=utf8mb4"


async def drop_database(backend: str, url: str) -> None:
    name = url.rsplit("/", 1)[1].split("?")[0]
    if backend == "sqlite":
        return  # the file lives in tmp_path
    if backend == "postgresql":
        connection = await asyncpg.connect(
            host=HOST, port=POSTGRESQL_PORT, user="postgres", database="postgres"
        )
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()
        return
    server = await aiomysql.connect(host=HOST, port=MARIADB_PORT, user="root", password="")
    try:
        async with server.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        server.close()


async def create_default_tables(url: str) -> None:
    """Create the embedded default tables (users, groups, memberships) in `url`'s database."""
    engine = on_sqlite(create_async_engine(url))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(default_metadata().create_all)
    finally:
        await engine.dispose()
