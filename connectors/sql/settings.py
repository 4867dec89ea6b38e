"""The `[connectors.NAME]` table of a SQL connector, validated before anything connects."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Literal

import pydantic

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping

    from sqlalchemy.engine import URL

ACCEPTED_SCHEMES = (
    "sqlite+aiosqlite",
    "postgresql+asyncpg",
    "mysql+aiomysql",
    "mariadb+aiomysql",
)

MAX_POOL_SIZE = 256
"""Connections one process keeps open; PostgreSQL and MariaDB allow some 100 to 150 in all by
default, and every worker holds its own pool."""

MAX_PORT = 65_535
"""The highest TCP port; 0 (any free port) means nothing to a client."""

MAX_TIMEOUT = 86_400.0
"""A day: the longest wait any timeout of the file may ask for (`inf` is a mistake)."""

_SQLITE_OPTIONS = frozenset(
    {"timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements", "uri"}
)
"""What SQLAlchemy's sqlite driver reads from a URL's query; with `uri=true`, the others are
SQLite's own URI parameters (`mode=ro`), which SQLite reads itself."""

_MYSQL_BACKENDS = ("mysql", "mariadb")
"""SQLAlchemy's backend names for MySQL and MariaDB, both through aiomysql."""

_ASYNCPG_ADAPTER_OPTIONS = frozenset(
    {"prepared_statement_cache_size", "prepared_statement_name_func"}
)
"""Options SQLAlchemy's asyncpg adapter takes before calling asyncpg.connect."""


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
    # SQLAlchemy keeps any integer; the driver would refuse it only when connecting, with
    # an OverflowError from the socket layer.
    if parsed.port is not None and not 0 < parsed.port <= MAX_PORT:
        raise ValueError(f"has an invalid port: {parsed.port} is not within 1 to {MAX_PORT}")
    _check_options(parsed)
    if in_memory(parsed):
        # Accepted, it would answer every request and keep nothing: each process (and a
        # restart) starts from an empty database, while the identity provider believes
        # its users provisioned.
        raise ValueError(
            "names an in-memory SQLite database, emptied whenever the service stops (and "
            "one per worker): name a file, such as sqlite+aiosqlite:///scim-bridge.db"
        )
    return parsed


def in_memory(url: URL) -> bool:
    """Whether `url` names an in-memory SQLite database: no file (`sqlite://`,
    `:memory:`), or a SQLite URI (uri=true) opened with mode=memory or `file::memory:`."""
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or url.query.get("mode") == "memory"
        or "mode=memory" in database
    )


def _check_options(url: URL) -> None:
    """Each option of the URL's query is one its driver takes, with a value it reads.

    The driver would otherwise refuse it only when connecting, with a TypeError.
    """
    if not url.query:
        return
    backend = url.get_backend_name()
    options: MutableMapping[str, Any] = {}
    if backend == "sqlite":
        if url.query.get("uri") == "true":
            return
        unknown = sorted(set(url.query) - _SQLITE_OPTIONS)
    else:
        try:
            _, options = url.get_dialect()().create_connect_args(url)
        except (TypeError, ValueError):
            raise ValueError(
                f"an option of the query has a value {url.drivername} cannot read"
            ) from None
        known = _parameters(_driver_connect(backend))
        if backend == "postgresql":
            known |= _ASYNCPG_ADAPTER_OPTIONS
        unknown = sorted(name for name in options if name not in known)
    if unknown:
        hint = " (asyncpg spells it ssl=require)" if unknown[0] == "sslmode" else ""
        raise ValueError(f"{url.drivername} takes no option {unknown[0]!r}{hint}")
    if backend in _MYSQL_BACKENDS:
        _check_mysql_options(url, options)
    ssl = url.query.get("ssl")
    if backend == "postgresql" and ssl is not None and not _asyncpg_ssl_mode(ssl):
        # asyncpg would refuse it only when connecting, naming `sslmode`, an option the
        # admin did not write.
        raise ValueError(f"ssl={ssl!r}: asyncpg takes one of {', '.join(_ASYNCPG_SSL_MODES)}")


def _check_mysql_options(url: URL, options: Mapping[str, Any]) -> None:
    """What aiomysql would take and then misuse, or fail on only when connecting.

    The `ssl_*` options make a TLS context (connectors.sql.mysql_tls); `ssl` itself,
    which aiomysql would take as true and then connect without TLS, is refused. A
    `charset` MySQL does not have would end in an AttributeError of aiomysql's own; it is
    not repeated, as a mistyped value may be anything pasted there.
    """
    if "ssl" in url.query:
        raise ValueError(
            f"{url.drivername} takes TLS as ssl_ca=FILE (or ssl_capath=DIR), with "
            "ssl_cert=FILE and ssl_key=FILE for a client certificate, not as ssl"
        )
    tls = options.get("ssl")
    if isinstance(tls, dict):
        from connectors.sql.mysql_tls import tls_context

        tls_context(tls)
    charset = url.query.get("charset")
    if charset is not None and not _mysql_charset(charset):
        raise ValueError(
            "charset: MySQL has no character set of that name (utf8mb4, used when none "
            "is given, stores every name an identity provider sends)"
        )


def _mysql_charset(value: object) -> bool:
    """Whether aiomysql knows `value` as a character set (it looks it up in PyMySQL's)."""
    from pymysql.charset import charset_by_name

    return isinstance(value, str) and charset_by_name(value) is not None


def _asyncpg_ssl_mode(value: object) -> bool:
    """Whether asyncpg reads `value` as an sslmode (it takes `_` for `-`, verify_full)."""
    return isinstance(value, str) and value.replace("_", "-") in _ASYNCPG_SSL_MODES


_ASYNCPG_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
"""The values asyncpg's `ssl` takes as text (libpq's sslmode values)."""


def _driver_connect(backend: str) -> Callable[..., Any]:
    if backend == "postgresql":
        import asyncpg

        return asyncpg.connect  # type: ignore[no-any-return]
    import aiomysql

    return aiomysql.connect  # type: ignore[no-any-return]


def _parameters(function: Callable[..., Any]) -> set[str]:
    return {
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }


class SqlSettings(pydantic.BaseModel):
    """A connection to existing tables (or to the embedded SQLite default)."""

    # The URL may hold a password: never echo it back in a validation message or a repr.
    # strict: a TOML value already has its type; "10" where 10 is meant is a mistake.
    model_config = pydantic.ConfigDict(
        extra="forbid", strict=True, frozen=True, hide_input_in_errors=True
    )

    type: Literal["sql"]
    url: str = pydantic.Field(repr=False)
    """A SQLAlchemy async URL: sqlite+aiosqlite:///file.db, postgresql+asyncpg://...,
    mysql+aiomysql://..."""
    create_tables: bool = False
    """Create the sql-default mapping's tables when missing, in whichever database
    (existing tables are never altered)."""
    pool_size: int = pydantic.Field(default=10, gt=0, le=MAX_POOL_SIZE)
    connect_timeout: float = pydantic.Field(default=10.0, gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)

    @pydantic.field_validator("url")
    @classmethod
    def _accepted_driver(cls, url: str) -> str:
        parse_url(url)
        return url
