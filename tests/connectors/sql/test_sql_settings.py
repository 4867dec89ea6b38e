"""The settings model: accepted URLs, and messages that never repeat a password."""

from __future__ import annotations

import pydantic
import pytest
from sql_specs import SCHEMA

from connectors import build_connector
from connectors.sql import SqlConnector, SqlSettings


def refusal(**settings: object) -> str:
    with pytest.raises(pydantic.ValidationError) as raised:
        SqlSettings.model_validate({"type": "sql", **settings})
    return str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///scim.db",
        "postgresql+asyncpg://scim:secret@db.example/scim",
        "mysql+aiomysql://scim:secret@db.example/scim",
        "mariadb+aiomysql://scim:secret@db.example/scim",
    ],
)
def test_accepted_urls(url: str) -> None:
    settings = SqlSettings(type="sql", url=url)
    assert settings.pool_size == 10
    assert settings.connect_timeout == 10.0
    assert not settings.create_tables
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://scim:hunter2@db.example/scim",
        "mysql+pymysql://scim:hunter2@db.example/scim",
        "sqlite:///hunter2.db",
    ],
)
def test_synchronous_drivers_are_refused(url: str) -> None:
    message = refusal(url=url)
    assert "unsupported database scheme" in message
    assert "postgresql+asyncpg://" in message
    assert "hunter2" not in message


def test_an_unparsable_url_is_not_echoed() -> None:
    message = refusal(url="hunter2 is not a url")
    assert "is not a database URL" in message
    assert "hunter2" not in message


def test_create_tables_is_for_every_database() -> None:
    for url in ("sqlite+aiosqlite:///x.db", "postgresql+asyncpg://scim@db/scim"):
        assert SqlSettings(type="sql", url=url, create_tables=True).create_tables


@pytest.mark.parametrize(
    ("settings", "location"),
    [
        ({"pool_size": 0}, "pool_size"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"schema": "public"}, "schema"),
    ],
)
def test_other_refusals(settings: dict[str, object], location: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        SqlSettings.model_validate({"type": "sql", "url": "sqlite+aiosqlite:///x.db", **settings})
    assert [error["loc"] for error in raised.value.errors()] == [(location,)]


def test_build_connector() -> None:
    settings = SqlSettings(type="sql", url="sqlite+aiosqlite:///x.db")
    connector = build_connector(settings, SCHEMA)
    assert isinstance(connector, SqlConnector)
    assert connector.schema is SCHEMA


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres:hunter2@127.0.0.1:99999/db",
        "mysql+aiomysql://root:hunter2@127.0.0.1:99999/db",
        "mariadb+aiomysql://root:hunter2@127.0.0.1:0/db",
    ],
)
def test_a_port_out_of_range_is_refused(url: str) -> None:
    # The driver would refuse it only when connecting, with a traceback (OverflowError).
    message = refusal(url=url)
    assert "has an invalid port: " in message
    assert "is not within 1 to 65535" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite:///file::memory:?cache=shared&uri=true",
        "sqlite+aiosqlite:///file:scim?mode=memory&cache=shared&uri=true",
    ],
)
def test_an_in_memory_database_is_refused(url: str) -> None:
    # It would answer every request and keep nothing past a restart (one per worker).
    message = refusal(url=url)
    assert "names an in-memory SQLite database, emptied whenever the service stops" in message
    assert "sqlite+aiosqlite:///scim-bridge.db" in message


def test_a_sqlite_uri_naming_a_file_is_accepted() -> None:
    assert SqlSettings(type="sql", url="sqlite+aiosqlite:///file:scim.db?mode=rwc&uri=true")
