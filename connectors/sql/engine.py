"""The SQLAlchemy async engine for a SqlSettings, with each driver's connection options."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from connectors.sql import caseless
from connectors.sql.settings import SqlSettings, parse_url

WRITE_OPTION = "scimbridge_write"
"""Execution option marking a transaction that will write (SQLite begins it IMMEDIATE)."""

IDLE_BEFORE_PING = 2.0
"""Seconds a pooled connection may rest before it is pinged on its next checkout.

SQLAlchemy's pool_pre_ping pings on every checkout: on asyncpg that is three round trips
(BEGIN, an empty query, ROLLBACK), more than the query it guards under load. Connections
in steady use are alive; the ones that die are those left idle across a server restart,
a failover or a firewall's idle timeout, and those are pinged. A restart within this window
costs one request a 503 with Retry-After: the disconnect it meets invalidates the whole
pool, so the next request connects afresh."""
_RETURNED = "scimbridge_returned"
"""Key of a pooled connection's info: when it was last checked in (time.monotonic())."""


def make_engine(settings: SqlSettings) -> AsyncEngine:
    url = parse_url(settings.url)
    backend = url.get_backend_name()
    options: dict[str, Any] = {}
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        # sqlite3's timeout is the busy timeout: wait for a writer instead of failing.
        connect_args["timeout"] = settings.connect_timeout
    elif backend == "postgresql":
        connect_args["timeout"] = settings.connect_timeout
        # Statements are prepared once per connection (asyncpg's cache). After five runs
        # PostgreSQL may keep one generic plan for good, made while a table was small: an
        # initial sync into an empty table then scans the whole table for every lookup
        # long after it has grown. A plan made for each run sees the table as it is.
        connect_args["server_settings"] = {"plan_cache_mode": "force_custom_plan"}
    else:
        connect_args["connect_timeout"] = settings.connect_timeout
        if "charset" not in url.query:
            connect_args["charset"] = "utf8mb4"
        options["pool_recycle"] = 3600  # the server drops idle connections (wait_timeout)
        options["async_creator"] = _mysql_connect(url, connect_args, settings.connect_timeout)
    options.update(pool_size=settings.pool_size, pool_timeout=settings.connect_timeout)
    # A statement's parameters are the rows' values (personal data, a password): an error
    # that reaches a log says "[SQL parameters hidden due to hide_parameters=True]".
    engine = create_async_engine(url, connect_args=connect_args, hide_parameters=True, **options)
    if backend == "sqlite":
        _configure_sqlite(engine)
    else:
        _note_returns(engine)
    return engine


def _mysql_connect(
    url: sa.URL, connect_args: dict[str, Any], timeout: float
) -> Callable[[], Awaitable[Any]]:
    """aiomysql's connect, bounded by `timeout` from start to end.

    aiomysql bounds only the TCP connection by its connect_timeout: a server (or a proxy)
    that accepts it and never sends its greeting holds `check`, the start and then every
    request that needs a new connection forever. PostgreSQL's asyncpg bounds it all.
    With the URL's `ssl_*` options, TLS is required and verified (mysql_tls).
    """
    import aiomysql

    from connectors.sql.mysql_tls import TlsRequired, tls_context

    arguments, options = url.get_dialect()().create_connect_args(url)
    options = {**options, **connect_args}
    connection_class = aiomysql.Connection
    if isinstance(options.get("ssl"), dict):  # the URL's ssl_* options
        options["ssl"] = tls_context(options["ssl"])
        connection_class = TlsRequired

    async def connect() -> Any:
        connection = connection_class(*arguments, **options)
        try:
            # What aiomysql.connect() does, keeping the connection to close it if cancelled.
            await asyncio.wait_for(connection._connect(), timeout)
        except BaseException:
            # aiomysql closes its socket on an error, but not when cancelled.
            connection.close()
            raise
        return connection

    return connect


@asynccontextmanager
async def live_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection, pinged first when it has rested longer than IDLE_BEFORE_PING.

    A connection that fails its ping is dropped and replaced by a new one. SQLite
    connections are local files and are never pinged.
    """
    connection = await engine.connect()
    try:
        returned = connection.info.get(_RETURNED)
        if returned is not None and time.monotonic() - returned > IDLE_BEFORE_PING:
            try:
                await connection.run_sync(_ping)
            except Exception:  # whatever the failure, the connection is gone
                await connection.invalidate()
                await connection.close()
                connection = await engine.connect()
        yield connection
    finally:
        await connection.close()


def _ping(connection: sa.Connection) -> None:
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None or not connection.dialect.do_ping(dbapi_connection):
        raise ConnectionError("the connection did not answer its ping")


def _note_returns(engine: AsyncEngine) -> None:
    @sa.event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:  # None once the connection was invalidated
            record.info[_RETURNED] = time.monotonic()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @sa.event.listens_for(engine.sync_engine, "connect")
    def _on_connect(connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN, so that writers can take the write
        # lock up front: a deferred transaction that reads and then writes can fail
        # at once with SQLITE_BUSY instead of waiting for the busy timeout.
        connection.isolation_level = None
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        caseless.register(connection)

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
