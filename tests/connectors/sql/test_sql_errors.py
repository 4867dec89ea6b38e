"""Driver errors become the connector's own, with short messages and no driver text."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from ports import free_port
from sql_specs import SCHEMA
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.base import BackendSchema, Field, InvalidValue, Kind, ObjectSpec, Unavailable
from connectors.sql import SqlConnector, SqlSettings
from connectors.sql.caseless import on_sqlite
from connectors.sql.engine import make_engine
from connectors.sql.errors import translated_errors


def closed_port() -> int:
    """A loopback port nobody listens on."""
    return free_port()


@pytest.mark.parametrize("scheme", ["postgresql+asyncpg", "mysql+aiomysql"])
async def test_a_server_that_is_down_is_unavailable(scheme: str) -> None:
    url = f"{scheme}://scim:hunter2@127.0.0.1:{closed_port()}/scim"
    connector = SqlConnector(SqlSettings(type="sql", url=url, connect_timeout=2), SCHEMA)
    with pytest.raises(Unavailable) as raised:
        await connector.open()
    assert raised.value.retry_after == 5
    assert raised.value.message == "the database is unavailable, retry later"


async def test_an_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/missing/dir/scim.db"
    connector = SqlConnector(SqlSettings(type="sql", url=url), SCHEMA)
    with pytest.raises(Unavailable):
        await connector.open()
    with pytest.raises(RuntimeError, match="not open"):
        await connector.get(Kind.USERS, "1")
    await _aiosqlite_threads_stopped()


async def _aiosqlite_threads_stopped() -> None:
    """aiosqlite stops the thread of a failed connection without waiting for it; were the
    loop closed before the thread reports back, the thread's error would fail a later test."""
    for _ in range(100):
        if not any("_connection_worker_thread" in each.name for each in threading.enumerate()):
            return
        await asyncio.sleep(0.01)


STRICT = sa.MetaData()
sa.Table(
    "strict",
    STRICT,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(20)),
    sa.Column("boss", sa.Integer, sa.ForeignKey("strict.id")),
    sa.Column("required", sa.String(20), nullable=False),  # not mapped, no default
)


@pytest.fixture
async def strict(sql_url: str) -> str:
    engine = on_sqlite(create_async_engine(sql_url))
    async with engine.begin() as connection:
        await connection.run_sync(STRICT.create_all)
    await engine.dispose()
    return sql_url


async def refusal(url: str, values: dict[str, object], constants: dict[str, str]) -> str:
    # boss is a plain integer here, so only the database's foreign key guards it.
    spec = ObjectSpec(
        kind=Kind.USERS,
        object="strict",
        key="id",
        fields=(Field("name"), Field("boss")),
        constants=constants,
    )
    connector = SqlConnector(SqlSettings(type="sql", url=url), BackendSchema(users=spec))
    await connector.open()
    try:
        with pytest.raises(InvalidValue) as raised:
            await connector.create(Kind.USERS, values)
    finally:
        await connector.close()
    return raised.value.message


async def test_database_refusals_are_invalid_values(strict: str) -> None:
    assert await refusal(strict, {"name": "alice"}, {}) == "a required value is missing"
    assert (
        await refusal(strict, {"name": "alice", "boss": 42}, {"required": "yes"})
        == "a referenced record does not exist, or is still referenced"
    )


async def test_every_engine_hides_the_parameters_of_a_failed_statement(sql_url: str) -> None:
    engine = make_engine(SqlSettings(type="sql", url=sql_url))
    try:
        assert engine.sync_engine.hide_parameters
        statement = sa.text("SELECT * FROM no_such_table WHERE name = :name")
        async with engine.connect() as connection:
            with pytest.raises(sa.exc.DBAPIError) as raised:
                await connection.execute(statement, {"name": "jane.secret"})
        assert "jane.secret" not in str(raised.value)
        assert "[SQL parameters hidden due to hide_parameters=True]" in str(raised.value)
    finally:
        await engine.dispose()


async def test_a_triggers_words_are_logged_on_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The words are the admin's, but a line break in them would forge a log line."""
    engine = make_engine(SqlSettings(type="sql", url=f"sqlite+aiosqlite:///{tmp_path}/t.db"))
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text("CREATE TABLE t (v TEXT)"))
            await connection.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON t BEGIN "
                    "SELECT RAISE(ABORT, 'refused\nWARNING forged line'); END"
                )
            )
        async with engine.connect() as connection:
            with pytest.raises(InvalidValue) as raised, translated_errors():
                await connection.execute(sa.text("INSERT INTO t (v) VALUES (:v)"), {"v": "x"})
    finally:
        await engine.dispose()
    assert raised.value.message == (
        "the database refused the change (a rule of its own, such as a trigger)"
    )
    [record] = caplog.records
    assert record.getMessage() == (
        "the database refused a change to table t by a rule of its own "
        "(SQLITE_CONSTRAINT_TRIGGER): refused WARNING forged line"
    )
