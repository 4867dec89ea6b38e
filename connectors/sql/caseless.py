"""Text compared without case, in every script, on every database.

PostgreSQL's and MariaDB's `lower()` fold every script (`É` to `é`); SQLite's built-in
`lower()` folds ASCII letters only, so on SQLite `JOSÉ` and `josé` would be two user
names, and `userName eq "josé"` would not find `JOSÉ` (RFC 7643 §4.1.1: userName is not
case-exact). On SQLite, `caseless(x)` is a function this service registers on each
connection, `scim_lower`, which folds as Python's `str.lower` does; elsewhere it is
`lower`. The embedded database's unique index is built on the same expression, so lookups
use it. Another program writing to that table without the function fails loudly ("no such
function: scim_lower") instead of leaving the index out of step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

SQLITE_FUNCTION = "scim_lower"


class caseless(GenericFunction[str]):
    """`lower(text)`, Unicode-aware on SQLite too."""

    type = sa.String()
    name = "caseless"
    inherit_cache = True


@compiles(caseless)
def _lower(element: caseless, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(caseless, "sqlite")
def _sqlite_lower(element: caseless, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_FUNCTION}({compiler.process(element.clauses, **kw)})"


BUILT_IN_LOWER = "scim_bridge.built_in_lower"
"""Column.info key: on SQLite, the table's index for this column is on the built-in
`lower()` (a table made by other means, or an earlier index kept): queries use it too,
so that the index serves them, with its ASCII-only folding."""


def folding(column: sa.ColumnElement[Any]) -> Callable[[Any], sa.ColumnElement[Any]]:
    """The case-folding function to compare `column` with: the one its index is on."""
    if getattr(column, "info", {}).get(BUILT_IN_LOWER):
        return sa.func.lower
    return caseless


def fold(value: Any) -> Any:
    """What `scim_lower` returns: text lower-cased, anything else as it is (NULL stays)."""
    return value.lower() if isinstance(value, str) else value


def on_sqlite(engine: AsyncEngine) -> AsyncEngine:
    """`engine` with `scim_lower` registered on each of its connections, when SQLite (for
    programs beside the service that write its tables: tests, scripts)."""
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine.sync_engine, "connect", lambda dbapi, _: register(dbapi))
    return engine


def register(dbapi_connection: Any) -> None:
    """Make `scim_lower` known to a new SQLite connection (deterministic: an index may
    be built on it)."""
    dbapi_connection.create_function(SQLITE_FUNCTION, 1, fold, deterministic=True)
