"""The SQLAlchemy async engine for a SqlSettings, with each driver's connection options."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.sql.settings import SqlSettings, parse_url

WRITE_OPTION = "scimbridge_write"
"""Execution option marking a transaction that will write (SQLite begins it IMMEDIATE)."""


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
    else:
        connect_args["connect_timeout"] = settings.connect_timeout
        if "charset" not in url.query:
            connect_args["charset"] = "utf8mb4"
        options["pool_recycle"] = 3600  # the server drops idle connections (wait_timeout)
    if not _in_memory(url):
        options.update(
            pool_size=settings.pool_size,
            pool_timeout=settings.connect_timeout,
            pool_pre_ping=backend != "sqlite",
        )
    engine = create_async_engine(url, connect_args=connect_args, **options)
    if backend == "sqlite":
        _configure_sqlite(engine)
    return engine


def _in_memory(url: sa.URL) -> bool:
    """An in-memory SQLite database lives in one shared connection, without a pool."""
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in database
    )


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

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
