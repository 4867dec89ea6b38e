"""The one place where driver errors become connector errors.

Each of the three drivers reports the same trouble its own way: asyncpg by SQLSTATE,
PyMySQL by MySQL error number, sqlite3 by extended result code name. The messages raised
here are fixed, short and safe for a client: never SQL, never driver text. Anything not
recognised propagates unchanged, for the bridge to log and answer with a 500.
A refusal by a rule of the database itself (a CHECK constraint, a trigger) is the client's
400, naming the constraint (and the column, when the database names it); the admin reads a
warning naming the table and the constraint, or the trigger's own words: never the row's
values, never the statement.
`connection_problem` is the operator's side: why the first connection failed, in words.
"""

from __future__ import annotations

import logging
import pathlib
import re
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from connectors.base import Conflict, ConnectorError, InvalidValue, Unavailable
from connectors.sql.settings import in_memory

log = logging.getLogger("scim_bridge.sql")

RETRY_AFTER = 5
"""Seconds a client is asked to wait when the database is unreachable or busy."""

_UNAVAILABLE = "the database is unavailable, retry later"
_TAKEN = "a unique value is already taken"
_REFERENCE = "a referenced record does not exist, or is still referenced"
_REQUIRED = "a required value is missing"
_UNFIT = "a value does not fit its field"
_CHECKED = "the value is refused by the check constraint {}"
_CHECKED_UNNAMED = "the value is refused by a check constraint of the table"
_RULE = "the database refused the change (a rule of its own, such as a trigger)"

# MySQL/MariaDB error numbers (PyMySQL puts them first in the exception's args).
_MYSQL_UNAVAILABLE = frozenset(
    {1040, 1053, 1205, 2002, 2003, 2006, 2013, 2026}
)  # too many connections, shutdown, lock wait timeout, cannot connect, gone, lost, no TLS
_MYSQL_DEADLOCK = 1213
_SQLSTATE_ROLLED_BACK = frozenset({"40001", "40P01"})  # serialization failure, deadlock
_SQLSTATE_CHECK = "23514"
_SQLSTATE_RULES = frozenset({"P0001", "P0004"})  # PL/pgSQL's RAISE EXCEPTION, ASSERT
_SQLSTATE_USER_CLASS = "45"  # SQL's "unhandled user-defined exception", as SIGNAL raises
_MYSQL_CHECK = 4025  # CONSTRAINT `name` failed for `db`.`table`
_MYSQL_SIGNAL = 1644  # a SIGNAL of a trigger or procedure


class RolledBack(Unavailable):
    """The database chose this transaction as a deadlock's (or a serialization
    failure's) victim and rolled it back whole: made again from the start, it succeeds
    once the other is through (connectors.sql.connector redoes it; 503 if it never does)."""

    def __init__(self) -> None:
        super().__init__(_UNAVAILABLE, retry_after=RETRY_AFTER)


_MYSQL_TAKEN = frozenset({1062, 1169})
_MYSQL_REFERENCE = frozenset({1216, 1217, 1451, 1452})
_MYSQL_REQUIRED = frozenset({1048, 1364})
_MYSQL_UNFIT = frozenset({1264, 1265, 1292, 1366, 1406})

# SQLite extended result code names (sqlite3 exceptions' sqlite_errorname).
_SQLITE_TAKEN = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})
_SQLITE_CHECK = "SQLITE_CONSTRAINT_CHECK"
_SQLITE_RULE = "SQLITE_CONSTRAINT_TRIGGER"  # RAISE(ABORT, ...) in a trigger


@contextmanager
def translated_errors() -> Iterator[None]:
    """Run a block of database work, raising connector errors for known driver errors."""
    try:
        yield
    except ConnectorError:
        raise
    except (OSError, TimeoutError, sa_exc.TimeoutError) as error:
        # Connection refused, name resolution, connect timeout, pool exhausted.
        raise Unavailable(_UNAVAILABLE, retry_after=RETRY_AFTER) from error
    except sa_exc.DBAPIError as error:
        translated = _translate(error)
        if translated is None:
            raise
        raise translated from error


def _translate(error: sa_exc.DBAPIError) -> ConnectorError | None:
    if error.connection_invalidated:
        return Unavailable(_UNAVAILABLE, retry_after=RETRY_AFTER)
    refused = _refused_by_rule(error)
    if refused is not None:
        return refused
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    sqlite_name = getattr(original, "sqlite_errorname", None)
    args = getattr(original, "args", ())
    specific: ConnectorError | None = None
    if args and isinstance(args[0], int):  # PyMySQL also sets a sqlstate, a coarser one
        specific = _from_mysql(args[0])
    elif isinstance(sqlstate, str):
        specific = _from_sqlstate(sqlstate)
    elif isinstance(sqlite_name, str):
        specific = _from_sqlite(sqlite_name)
    return specific or _from_class(error)


@dataclass(frozen=True)
class _Check:
    """A CHECK constraint that refused a row, as the database names it."""

    constraint: str | None  # None: SQLite's unnamed constraint, said by its expression
    table: str | None
    column: str | None = None
    expression: str | None = None  # for the admin's log only: it is SQL


def _refused_by_rule(error: sa_exc.DBAPIError) -> InvalidValue | None:
    """A CHECK constraint's or a trigger's refusal: 400 for the client, a warning line for
    the admin. The statement and its parameters are in neither."""
    original = error.orig
    args: tuple[Any, ...] = getattr(original, "args", ())
    number = args[0] if args and isinstance(args[0], int) else None
    sqlstate = getattr(original, "sqlstate", None)
    sqlite_name = getattr(original, "sqlite_errorname", None)
    check: _Check | None = None
    if number == _MYSQL_CHECK:
        check = _mysql_check(str(args[1]) if len(args) > 1 else "")
    elif number is None and sqlstate == _SQLSTATE_CHECK:
        check = _Check(
            _diagnostic(original, "constraint_name"),
            _diagnostic(original, "table_name"),
            _diagnostic(original, "column_name"),
        )
    elif sqlite_name == _SQLITE_CHECK:
        check = _sqlite_check(_first_arg(original))
    if check is not None:
        return _check_refusal(check, _written_table(error))
    said: str | None = None
    if number == _MYSQL_SIGNAL:
        said = str(args[1]) if len(args) > 1 else ""
    elif number is None and isinstance(sqlstate, str) and _is_rule(sqlstate):
        said = _diagnostic(original, "message") or _first_arg(original)
    elif sqlite_name == _SQLITE_RULE:
        said = _first_arg(original)
    if said is None:
        return None
    code = sqlstate if isinstance(sqlstate, str) else sqlite_name
    log.warning(
        "the database refused a change to table %s by a rule of its own (%s): %s",
        _shown(_written_table(error) or "(not named)"),
        f"SQLSTATE {code}" if isinstance(sqlstate, str) else code,
        _shown(said),
    )
    return InvalidValue(_RULE)


def _is_rule(sqlstate: str) -> bool:
    return sqlstate in _SQLSTATE_RULES or sqlstate.startswith(_SQLSTATE_USER_CLASS)


def _check_refusal(check: _Check, written: str | None) -> InvalidValue:
    table = check.table or written
    if check.constraint is None:
        message = _CHECKED_UNNAMED
        named = f"without a name, {_shown(check.expression or '')}"
    else:
        message = _CHECKED.format(f'"{_shown(check.constraint)}"')
        named = _shown(check.constraint)
    column = f", column {_shown(check.column)}" if check.column else ""
    log.warning(
        "the database refused a value for table %s%s: check constraint %s",
        _shown(table or "(not named)"),
        column,
        named,
    )
    return InvalidValue(message, field=check.column)


_MYSQL_CHECK_TEXT = re.compile(
    r"CONSTRAINT `((?:[^`]|``)*)` failed for `(?:[^`]|``)*`\.`((?:[^`]|``)*)`"
)


def _mysql_check(message: str) -> _Check:
    """MariaDB names a column's own constraint `table.column`, a table's by its name."""
    found = _MYSQL_CHECK_TEXT.search(message)
    if found is None:
        return _Check(None, None)
    name, table = (part.replace("``", "`") for part in found.groups())
    column = name.removeprefix(f"{table}.") if name.startswith(f"{table}.") else None
    return _Check(name, table, column)


_SQLITE_CHECK_PREFIX = "CHECK constraint failed: "
_NAME = re.compile(r"\w+")


def _sqlite_check(message: str) -> _Check:
    """SQLite names a constraint by its name, or, having none, by its expression."""
    said = message.removeprefix(_SQLITE_CHECK_PREFIX)
    if _NAME.fullmatch(said):
        return _Check(said, None)
    return _Check(None, None, expression=said)


def _diagnostic(original: BaseException | None, name: str) -> str | None:
    """A field of asyncpg's error (SQLAlchemy's adapted error has it as its cause)."""
    for each in (original, getattr(original, "__cause__", None)):
        value = getattr(each, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _first_arg(original: BaseException | None) -> str:
    args = getattr(original, "args", ())
    return str(args[0]) if args else ""


_WRITTEN = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([^\s(]+)", re.IGNORECASE)


def _written_table(error: sa_exc.DBAPIError) -> str | None:
    """The table a statement writes, read from its text (SQLite's errors name none)."""
    found = _WRITTEN.match(error.statement or "")
    return found[1].replace('"', "").replace("`", "") if found else None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_SHOWN_MAX = 200


def _shown(text: str) -> str:
    """A name or a message of the database, on one line and cut short."""
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= _SHOWN_MAX else flat[: _SHOWN_MAX - 1] + "…"


def _from_sqlstate(sqlstate: str) -> ConnectorError | None:
    """PostgreSQL, Appendix A of its manual."""
    if sqlstate in _SQLSTATE_ROLLED_BACK:
        return RolledBack()
    if sqlstate.startswith(("08", "53", "57P")) or sqlstate == "55P03":
        return Unavailable(_UNAVAILABLE, retry_after=RETRY_AFTER)
    if sqlstate == "23505":
        return Conflict(_TAKEN)
    if sqlstate == "23503":
        return InvalidValue(_REFERENCE)
    if sqlstate == "23502":
        return InvalidValue(_REQUIRED)
    if sqlstate.startswith(("22", "23")):
        return InvalidValue(_UNFIT)
    return None


def _from_sqlite(name: str) -> ConnectorError | None:
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN")):
        return Unavailable(_UNAVAILABLE, retry_after=RETRY_AFTER)
    if name in _SQLITE_TAKEN:
        return Conflict(_TAKEN)
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return InvalidValue(_REFERENCE)
    if name == "SQLITE_CONSTRAINT_NOTNULL":
        return InvalidValue(_REQUIRED)
    if name.startswith(("SQLITE_CONSTRAINT", "SQLITE_MISMATCH", "SQLITE_TOOBIG")):
        return InvalidValue(_UNFIT)
    return None


def _from_mysql(number: int) -> ConnectorError | None:
    if number == _MYSQL_DEADLOCK:
        return RolledBack()
    if number in _MYSQL_UNAVAILABLE:
        return Unavailable(_UNAVAILABLE, retry_after=RETRY_AFTER)
    if number in _MYSQL_TAKEN:
        return Conflict(_TAKEN)
    if number in _MYSQL_REFERENCE:
        return InvalidValue(_REFERENCE)
    if number in _MYSQL_REQUIRED:
        return InvalidValue(_REQUIRED)
    if number in _MYSQL_UNFIT:
        return InvalidValue(_UNFIT)
    return None


def _from_class(error: sa_exc.DBAPIError) -> ConnectorError | None:
    """A last resort for a driver that says nothing more precise than its error class."""
    if isinstance(error, sa_exc.IntegrityError | sa_exc.DataError):
        return InvalidValue(_UNFIT)
    return None


def connection_problem(error: BaseException, url: sa.URL, connect_timeout: float) -> str | None:
    """Why a connection to `url` failed, in words for the operator at start-up.

    Never for a client (it names the database, the user, the host), and never the
    password: a driver's message is taken from a server's answer, or the socket layer's
    error, neither of which holds it. None when nothing in `error` is a connection failure.
    """
    for cause in _causes(error):
        if isinstance(cause, sa_exc.DBAPIError):
            return _refused(cause, url)
        if isinstance(cause, TimeoutError | sa_exc.TimeoutError):
            return f"no answer within connect_timeout ({connect_timeout:g} seconds)"
        if isinstance(cause, socket.gaierror):
            return f"host name {url.host!r} not found"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the server running, on this port?)"
        if isinstance(cause, OSError):
            return _sentence(cause.strerror or str(cause))
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _refused(error: sa_exc.DBAPIError, url: sa.URL) -> str:
    original = error.orig
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int):  # PyMySQL: (number, message)
        number = args[0]
        if number == 1045:
            return f"access denied for user {url.username!r} (wrong password?)"
        if number == 1044:
            return f"user {url.username!r} may not use database {url.database!r}"
        if number == 1049:
            return f"database {url.database!r} does not exist"
        tls = _tls_failure(error)
        if tls is not None:
            return tls
        if number == 2003:
            for cause in _causes(error):
                if isinstance(cause, socket.gaierror):
                    return f"host name {url.host!r} not found"
                if isinstance(cause, ConnectionRefusedError):
                    return "connection refused (is the server running, on this port?)"
        message = str(args[1]) if len(args) > 1 else type(original).__name__
        return _sentence(message)
    missing = missing_directory(url)
    if missing is not None:
        return missing
    # asyncpg and sqlite3 carry the server's or the library's own words.
    text = str(original).strip().splitlines()
    return _sentence(text[0]) if text else type(original).__name__


def _tls_failure(error: BaseException) -> str | None:
    """Why TLS failed, when it did: the server's certificate refused here, or ours (or
    the handshake) refused by the server, in OpenSSL's words."""
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"the server's TLS certificate was refused: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed: {(cause.reason or type(cause).__name__).lower()}"
    return None


def _sentence(message: str) -> str:
    return message[:1].lower() + message[1:]


def sqlite_file(url: sa.URL) -> pathlib.Path | None:
    """The file a SQLite URL names; None for another database, an in-memory one, or a
    SQLite URI (uri=true), whose file sqlite3 itself resolves."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or in_memory(url) or database.startswith("file:"):
        return None
    return pathlib.Path(database)


def missing_directory(url: sa.URL) -> str | None:
    """A SQLite file whose directory does not exist, said before connecting: sqlite3 would
    only say "unable to open database file" (and aiosqlite's thread outlive the failure)."""
    path = sqlite_file(url)
    if path is None or path.parent.is_dir():
        return None
    return f"directory {str(path.parent)!r} of the database file does not exist"


def missing_database(url: sa.URL) -> str | None:
    """A SQLite file that does not exist, in a directory that does: connecting would
    create it empty (and then report each table missing). Said only where nothing is to
    create it (create_tables)."""
    path = sqlite_file(url)
    if path is None or path.exists() or not path.parent.is_dir():
        return None  # a missing directory is missing_directory's
    return f"database file {url.database!r} does not exist (create_tables = true creates it)"
