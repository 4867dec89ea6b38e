"""The `[connectors.NAME]` table of a SQL connector, validated before anything connects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import pydantic

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

ACCEPTED_SCHEMES = (
    "sqlite+aiosqlite",
    "postgresql+asyncpg",
    "mysql+aiomysql",
    "mariadb+aiomysql",
)


def parse_url(url: str) -> URL:
    """Parse a SQLAlchemy URL without ever repeating it: it may carry a password.

    SQLAlchemy is imported here, not with the module: a service on a directory reads
    these settings' module but never loads SQLAlchemy (some 20 MB per process).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError("is not a database URL such as sqlite+aiosqlite:///file.db") from None
    if parsed.drivername not in ACCEPTED_SCHEMES:
        raise ValueError(
            f"unsupported database scheme {parsed.drivername!r}: use one of "
            + ", ".join(f"{scheme}://" for scheme in ACCEPTED_SCHEMES)
        )
    return parsed


class SqlSettings(pydantic.BaseModel):
    """A connection to existing tables (or to the embedded SQLite default)."""

    # The URL may hold a password: never echo it back in a validation message or a repr.
    model_config = pydantic.ConfigDict(extra="forbid", hide_input_in_errors=True)

    type: Literal["sql"]
    url: str = pydantic.Field(repr=False)
    """A SQLAlchemy async URL: sqlite+aiosqlite:///file.db, postgresql+asyncpg://...,
    mysql+aiomysql://..."""
    create_tables: bool = False
    """Create the embedded default tables when missing (SQLite only; existing tables are
    never altered)."""
    pool_size: int = pydantic.Field(default=10, gt=0)
    connect_timeout: float = pydantic.Field(default=10.0, gt=0)

    @pydantic.field_validator("url")
    @classmethod
    def _accepted_driver(cls, url: str) -> str:
        parse_url(url)
        return url

    @pydantic.field_validator("create_tables")
    @classmethod
    def _tables_only_for_sqlite(cls, create: bool, info: pydantic.ValidationInfo) -> bool:
        url = info.data.get("url")  # absent when the URL itself was refused
        if create and url is not None and parse_url(url).get_backend_name() != "sqlite":
            raise ValueError("create_tables is only for the embedded SQLite database")
        return create
