"""The embedded default tables, exactly the columns that mappings/sql-default.toml names.

scim-bridge creates them in its SQLite file at first start (`create_tables = true`); tests
create them on PostgreSQL and MariaDB too, so every type here is portable (VARCHAR with a
length, which MariaDB needs for an index).
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from connectors.base import BackendSchema
from connectors.sql.caseless import SQLITE_FUNCTION, caseless

log = logging.getLogger("scim_bridge.sql")

USER_NAME_INDEX = "users_user_name_lower"

_NAME = 255
"""Long enough for RFC 7643 names and e-mail addresses, short enough for a MariaDB index."""


def _timestamp() -> sa.types.TypeEngine[datetime]:
    # MariaDB's DATETIME drops fractions of a second unless asked to keep them.
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _text(name: str, length: int = _NAME) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=True)


def default_metadata() -> sa.MetaData:
    """A fresh MetaData holding the users, groups and memberships tables."""
    metadata = sa.MetaData()
    users = sa.Table(
        "users",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_name", sa.String(_NAME), nullable=False, unique=True),
        _text("external_id"),
        _text("given_name"),
        _text("family_name"),
        _text("formatted_name"),
        _text("display_name"),
        _text("nick_name"),
        _text("title"),
        _text("user_type"),
        _text("preferred_language", 64),
        _text("locale", 64),
        _text("timezone", 64),
        sa.Column("status", sa.CHAR(1), nullable=True),
        _text("email"),
        _text("phone", 64),
        _text("locality"),
        _text("employee_number", 64),
        _text("cost_center"),
        _text("organization"),
        _text("division"),
        _text("department"),
        sa.Column("manager_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        _text("start_date", 64),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.Column("modified_at", _timestamp(), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        # RFC 7643 §3.1: an id is never given to another resource. Without AUTOINCREMENT,
        # SQLite gives a deleted last row's id to the next insert.
        sqlite_autoincrement=True,
    )
    # userName compares case-insensitively (RFC 7643 §4.1.1): lower(user_name) is what a
    # lookup and the uniqueness check search, and what must be unique. MariaDB has no
    # index on an expression; its default collation ignores case already.
    lowered = sa.Index(USER_NAME_INDEX, caseless(users.c.user_name), unique=True)
    # SQLAlchemy documents a tuple of dialect names here; its annotation says one name.
    lowered.ddl_if(dialect=("postgresql", "sqlite"))  # type: ignore[arg-type]
    sa.Table(
        "groups",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        # RFC 7643 §4.2: displayName is required, but need not be unique.
        sa.Column("display_name", sa.String(_NAME), nullable=False),
        _text("external_id"),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.Column("modified_at", _timestamp(), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "memberships",
        metadata,
        sa.Column(
            "group_id",
            sa.Integer,
            sa.ForeignKey("groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,  # "the groups of this user" reads by member
        ),
    )
    return metadata


def foreign_to_default(schema: BackendSchema) -> str | None:
    """What the mapping names that the default tables lack (`table "people"`), or None
    when creating them is creating the mapping's tables: create_tables must not write
    three tables of no use into an admin's database, beside the tables the mapping wants.
    Names compare as reflect() compares them, without case."""
    default = {
        name: {column.name.lower() for column in table.columns}
        for name, table in default_metadata().tables.items()
    }
    wanted: list[tuple[str | None, list[str | None]]] = []
    for spec in (schema.users, schema.groups):
        if spec is not None:
            names = [spec.key, spec.created, spec.modified, spec.version, *spec.constants]
            wanted.append((spec.object, [*names, *(each.name for each in spec.fields)]))
    membership = schema.memberships
    if membership is not None:
        wanted.append((membership.object, [membership.group, membership.member]))
    for table, columns in wanted:
        if table is None or table.lower() not in default:
            return f'table "{table}"'
        for column in columns:
            if column is not None and column.lower() not in default[table.lower()]:
                return f'column "{column}" of table "{table}"'
    return None


def create_default_tables(connection: sa.Connection) -> None:
    """Create what is missing of the default tables; on SQLite, bring a user name index
    built by an earlier version on the built-in `lower()` (ASCII only) to `caseless`.

    Two stored names that differ only in a non-ASCII letter's case cannot both stay in
    the new unique index: the old index is then kept, and a warning says so.
    """
    metadata = default_metadata()
    metadata.create_all(connection)
    if connection.dialect.name != "sqlite":
        return
    found = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (USER_NAME_INDEX,)
    ).scalar()
    if found is None or SQLITE_FUNCTION in found:
        return
    [index] = [each for each in metadata.tables["users"].indexes if each.name == USER_NAME_INDEX]
    connection.exec_driver_sql(f"DROP INDEX {USER_NAME_INDEX}")
    try:
        with connection.begin_nested():
            index.create(connection)
    except sa.exc.IntegrityError:
        connection.exec_driver_sql(found)
        log.warning(
            "the users table holds user names that differ only in the case of a non-ASCII "
            "letter; they still count as different until one of them is renamed"
        )
