"""An admin's mistakes in the mapping or the connection, refused at start with one line
each instead of failing every request (or hanging) later."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from backends import create_database, drop_database
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.base import BackendSchema, Compare, Kind, Op, Query, Unavailable
from connectors.sql import SqlConnector, SqlSettings
from connectors.sql.caseless import on_sqlite
from connectors.sql.errors import connection_problem
from mappings import load_mapping

MAPPING = """
[users]
object = "people"
key = "{key}"
[users.attributes]
userName = "login"
{attributes}
"""


def people(*extra: sa.Column[object]) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "people",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("title", sa.String(64)),
        *extra,
    )
    return metadata


async def create(url: str, metadata: sa.MetaData) -> None:
    engine = on_sqlite(create_async_engine(url))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    await engine.dispose()


def schema(tmp_path: Path, attributes: str = "", key: str = "id") -> BackendSchema:
    path = tmp_path / "my.toml"
    path.write_text(MAPPING.format(key=key, attributes=attributes))
    return load_mapping(path).backend


async def problems(url: str, backend: BackendSchema, **settings: object) -> list[str]:
    connector = SqlConnector(
        SqlSettings.model_validate({"type": "sql", "url": url, **settings}), backend
    )
    await connector.open()
    try:
        source = f"{getattr(backend, 'source', '')}: "
        return [line.removeprefix(source) for line in await connector.verify()]
    finally:
        await connector.close()


# --- The key names one row -------------------------------------------------------------


async def test_a_key_that_is_no_unique_column_is_refused(sql_url: str, tmp_path: Path) -> None:
    # Rows would show "id": "None" (NULL) or share an id, and pages skip or repeat rows.
    await create(sql_url, people())
    assert await problems(sql_url, schema(tmp_path, key="title")) == [
        'users.key: column "title" of table "people" is neither its primary key nor a '
        "UNIQUE NOT NULL column: the SCIM id must name one row for good"
    ]


async def test_a_unique_nullable_key_is_refused(sql_url: str, tmp_path: Path) -> None:
    await create(sql_url, people(sa.Column("badge", sa.String(20), unique=True)))
    found = await problems(sql_url, schema(tmp_path, key="badge"))
    assert [line.split(" is neither")[0] for line in found] == [
        'users.key: column "badge" of table "people"'
    ]


async def test_a_unique_not_null_key_is_taken(sql_url: str, tmp_path: Path) -> None:
    extra = sa.Column("badge", sa.String(32), unique=True, nullable=False)
    await create(sql_url, people(extra))
    assert await problems(sql_url, schema(tmp_path, key="badge")) == []


# --- create_tables creates the default tables, for the default mapping only -------------


async def test_create_tables_with_another_mapping_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/hr.db"
    await create(url, people())
    found = await problems(url, schema(tmp_path), create_tables=True)
    assert found == [
        "create_tables creates the tables of the sql-default mapping (users, groups, "
        'memberships), and the mapping names table "people": create the mapping\'s tables '
        "yourself and set create_tables = false"
    ]
    with sqlite3.connect(tmp_path / "hr.db") as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert [name for (name,) in tables] == ["people"]


async def test_create_tables_with_the_default_mapping(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/new.db"
    assert await problems(url, load_mapping("sql-default").backend, create_tables=True) == []


async def test_create_tables_on_a_missing_file_with_another_mapping(tmp_path: Path) -> None:
    connector = SqlConnector(
        SqlSettings(type="sql", url=f"sqlite+aiosqlite:///{tmp_path}/hr.db", create_tables=True),
        schema(tmp_path),
    )
    with pytest.raises(Unavailable, match=r"^create_tables creates the tables of the sql-def"):
        await connector.open()
    assert not (tmp_path / "hr.db").exists()


async def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/typo.db"
    connector = SqlConnector(SqlSettings(type="sql", url=url), schema(tmp_path))
    with pytest.raises(Unavailable) as raised:
        await connector.open()
    assert connection_problem(raised.value, make_url(url), 10) == (
        f"database file '{tmp_path}/typo.db' does not exist (create_tables = true creates it)"
    )
    assert not (tmp_path / "typo.db").exists()


# --- A server that accepts and never answers ---------------------------------------------


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback port whose server accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("scheme", ["mysql+aiomysql", "mariadb+aiomysql", "postgresql+asyncpg"])
async def test_a_silent_server_is_no_answer_within_connect_timeout(
    scheme: str, silent_port: int, tmp_path: Path
) -> None:
    url = f"{scheme}://scim:hunter2@127.0.0.1:{silent_port}/scim"
    connector = SqlConnector(SqlSettings(type="sql", url=url, connect_timeout=1), schema(tmp_path))
    with pytest.raises(Unavailable) as raised:
        await asyncio.wait_for(connector.open(), 10)  # not forever: aiomysql's own bound
    assert connection_problem(raised.value, make_url(url), 1) == (
        "no answer within connect_timeout (1 seconds)"
    )


# --- Column names compare without case ---------------------------------------------------


async def test_a_column_named_in_another_case(sql_url: str, tmp_path: Path) -> None:
    # PostgreSQL keeps "Mixed" apart from mixed; SQLite and MariaDB ignore the case.
    await create(sql_url, people(sa.Column("Mixed", sa.String(64))))
    backend = schema(tmp_path, 'nickName = "mixed"\n"name.givenName" = "TITLE"')
    assert await problems(sql_url, backend) == []
    connector = SqlConnector(SqlSettings(type="sql", url=sql_url), backend)
    await connector.open()
    try:
        ada = await connector.create(Kind.USERS, {"login": "ada", "mixed": "A", "TITLE": "Dr"})
        assert ada.values == {"login": "ada", "mixed": "A", "TITLE": "Dr"}
        changed = await connector.update(Kind.USERS, ada.id, {"mixed": "B"})
        assert changed.values["mixed"] == "B"
        where = Compare("mixed", Op.EQ, "B")
        page = await connector.search(Kind.USERS, Query(where=where, limit=10))
        assert [record.id for record in page.records] == [ada.id]
        assert (await connector.get(Kind.USERS, ada.id)).values == changed.values
    finally:
        await connector.close()


async def test_columns_differing_only_in_case_are_named_exactly(tmp_path: Path) -> None:
    # Only PostgreSQL lets a table have both.
    url = await create_database("postgresql", tmp_path)
    try:
        await create(url, people(sa.Column("Mixed", sa.Text), sa.Column("MIXED", sa.Text)))
        assert await problems(url, schema(tmp_path, 'nickName = "mixed"')) == [
            'table "people" has columns "MIXED" and "Mixed", which differ only in case: '
            'name one exactly instead of "mixed"'
        ]
        assert await problems(url, schema(tmp_path, 'nickName = "Mixed"')) == []
    finally:
        await drop_database("postgresql", url)
