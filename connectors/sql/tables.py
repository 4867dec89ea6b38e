"""The existing tables a BackendSchema names, as reflected from the database.

scim-bridge never migrates a table: it reflects what is there, and verify() lists every
table or column the mapping names that the database lacks, and every column that could
not hold what the mapping writes (or that every create would leave empty while the table
requires a value), so that the service does not start to answer each write with an error.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connectors.base import (
    ENABLED_BY_LOCATION,
    BackendSchema,
    InvalidValue,
    Kind,
    NotFound,
    ObjectSpec,
    mapping_origin,
    rule_key,
)
from connectors.spelling import BACKEND_NEAR, did_you_mean
from connectors.sql.caseless import BUILT_IN_LOWER
from connectors.sql.values import INTEGER_RANGE, KEY_LENGTH, now, to_column


@dataclass(frozen=True, slots=True)
class Mapped:
    """One resource type's table."""

    spec: ObjectSpec
    table: sa.Table
    caseless_unique: Mapping[str, str] = field(default_factory=dict)
    """Columns whose case-insensitive uniqueness the database enforces itself, by the
    name of the unique index that does it: on lower(column) (PostgreSQL), or on a column
    whose collation ignores case (MariaDB's _ci, its default). Both name the index in
    their errors, so a violation is reported on the right attribute. Not on SQLite."""
    exact_unique: Mapping[str, str] = field(default_factory=dict)
    """The mapping's unique columns by the name of a plain unique constraint or index on
    one of them (PostgreSQL only): a value taken in exactly the same case trips it before
    the index on lower(column), and is reported on the attribute all the same. (On
    MariaDB such an index is in `caseless_unique` when its column ignores case.)"""

    @property
    def key(self) -> sa.Column[Any]:
        return self.table.c[self.spec.key]

    def column(self, name: str) -> sa.Column[Any]:
        """The column of a field the mapping may filter or sort on.

        Only mapped fields, the key and the created/modified/version stamps: an unmapped
        column (a password hash, say) is never reachable through a filter.
        """
        spec = self.spec
        known = {spec.key, spec.created, spec.modified, spec.version}
        if name not in known and spec.field_named(name) is None:
            raise ValueError(f"{name!r} is not a mapped field of {spec.kind.value}")
        return self.table.c[name]

    selected: tuple[sa.ColumnElement[Any], ...] = ()
    """Every column, read under the mapping's name for it (its key, see reflect): a row
    is keyed by field names even where the mapping spells one in another case. Built
    once (`__post_init__`): every read selects it."""

    def __post_init__(self) -> None:
        selected = tuple(
            column if column.key == column.name else column.label(column.key)
            for column in self.table.columns
        )
        object.__setattr__(self, "selected", selected)

    def is_text(self, name: str) -> bool:
        return isinstance(self.table.c[name].type, sa.String)


@dataclass(frozen=True, slots=True)
class Members:
    """The membership table: one (group key, user key) row per membership."""

    table: sa.Table
    group: sa.Column[Any]
    member: sa.Column[Any]


@dataclass(frozen=True, slots=True)
class Tables:
    """Everything reflected, with the problems found on the way."""

    dialect: str
    """The SQLAlchemy dialect name: sqlite, postgresql, mysql or mariadb."""
    users: Mapped | None
    groups: Mapped | None
    members: Members | None
    problems: tuple[str, ...]

    def of(self, kind: Kind) -> Mapped:
        mapped = self.users if kind is Kind.USERS else self.groups
        if mapped is None:
            raise NotFound(f"this service stores no {kind.value}")
        return mapped

    @property
    def is_mysql(self) -> bool:
        return self.dialect in ("mysql", "mariadb")


def missing_table(name: str) -> str:
    """The problem of a table the mapping names that the database does not hold."""
    return f'table "{name}" does not exist'


def reflect(connection: sa.Connection, schema: BackendSchema) -> Tables:
    """Reflect the tables of `schema` that exist; describe what is missing."""
    if schema.users.directory is not None:
        # Its objects are containers (ou=people), not tables: naming them helps nobody.
        problem = (
            f"{mapping_origin(schema, 'users')}: names classes and rdn: this is a directory "
            'mapping, for a connector of type "ldap"'
        )
        return Tables(connection.dialect.name, None, None, None, (problem,))
    names = [schema.users.object]
    if schema.groups is not None:
        names.append(schema.groups.object)
    membership = schema.memberships
    if membership is not None and membership.object is not None:
        names.append(membership.object)
    existing = set(sa.inspect(connection).get_table_names())
    metadata = sa.MetaData()
    renamed = _names_in_other_case(connection, schema, existing)

    @sa.event.listens_for(metadata, "column_reflect")
    def _mapping_name(_inspector: Any, table: sa.Table, column: dict[str, Any]) -> None:
        # The column answers to the mapping's spelling in Python (its key): rows, values
        # and table.c then take the mapping's field names, while SQL names it as it is.
        key = renamed.get((table.name, column["name"]))
        if key is not None:
            column["key"] = key

    with warnings.catch_warnings():
        # An index on an expression (lower(user_name)) serves the database, not us.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        metadata.reflect(connection, only=[name for name in names if name in existing])
    problems = [
        missing_table(name) + did_you_mean(name, existing, BACKEND_NEAR)
        for name in dict.fromkeys(names)
        if name not in existing
    ]

    if connection.dialect.name == "sqlite":
        for table in metadata.tables.values():
            _note_built_in_lower(connection, table)
    for name in _filled_by_triggers(connection, list(metadata.tables)):
        metadata.tables[name].info[FILLED_BY_TRIGGER] = True
    if connection.dialect.name != "sqlite":  # SQLite's INTEGER holds 64 bits
        for table in metadata.tables.values():
            for column in table.columns:
                if isinstance(column.type, sa.Integer):
                    column.info[INTEGER_RANGE] = _integer_range(column.type)
    for table in metadata.tables.values():
        for column in _numbered_by_database(connection, table):
            column.info[NUMBERED] = True

    def mapped(spec: ObjectSpec | None) -> Mapped | None:
        if spec is None or spec.object not in metadata.tables:
            return None
        table = metadata.tables[spec.object]
        missing = _missing(table, _object_columns(spec))
        problems.extend(missing)
        if not missing:
            problems.extend(_unfit(schema, spec, table))
            problems.extend(_unkeyable(schema, spec, table))
            if not _identifies(connection, table, table.c[spec.key]):
                problems.append(
                    f"{mapping_origin(schema, f'{spec.kind.value}.key')}: column "
                    f'"{table.c[spec.key].name}" of table "{table.name}" is neither its primary '
                    "key nor a UNIQUE NOT NULL column: the SCIM id must name one row for good"
                )
        version = table.c.get(spec.version) if spec.version is not None else None
        if version is not None and not isinstance(version.type, sa.Integer):
            problems.append(f'column "{version.name}" of table "{table.name}" is not an integer')
        for stamp in ("created", "modified"):
            column = table.c.get(getattr(spec, stamp) or "")
            if column is not None and _refused(column, (now(),)):
                problems.append(
                    f"{mapping_origin(schema, f'{spec.kind.value}.{stamp}')}: column "
                    f'"{column.name}" of table "{table.name}" is of type {column.type}, which '
                    "cannot hold the time of a write: give it a date-time type (TIMESTAMP)"
                )
        caseless: dict[str, str] = {}
        exact: dict[str, str] = {}
        if connection.dialect.name == "postgresql":
            caseless = _caseless_unique_indexes(connection, table, spec.unique)
            exact = _exact_unique_constraints(connection, table, spec.unique)
        elif connection.dialect.name in ("mysql", "mariadb"):
            caseless = _unique_ignoring_case(connection, table, spec.unique)
        return Mapped(spec, table, caseless, exact)

    users, groups = mapped(schema.users), mapped(schema.groups)
    members = _members(metadata, schema, problems)
    problems.extend(_unfit_references(schema, users, groups))
    if members is not None and users is not None and groups is not None:
        problems.extend(_swapped_members(schema, members, users, groups))
    if schema.groups is not None and membership is None:
        problems.append("groups are mapped but no membership table is")
    return Tables(
        dialect=connection.dialect.name,
        users=users,
        groups=groups,
        members=members,
        problems=tuple(problems),
    )


_WIDTHS = {"TINYINT": 8, "SMALLINT": 16, "MEDIUMINT": 24, "BIGINT": 64}


def _integer_range(kind: sa.Integer) -> tuple[int, int]:
    """The values an integer column holds: 32 bits unless its type says otherwise."""
    bits = _WIDTHS.get(type(kind).__name__.upper(), 32)
    if isinstance(kind, sa.BigInteger):
        bits = 64
    elif isinstance(kind, sa.SmallInteger):
        bits = min(bits, 16)
    if getattr(kind, "unsigned", False):
        return 0, 2**bits
    return -(2 ** (bits - 1)), 2 ** (bits - 1)


def _note_built_in_lower(connection: sa.Connection, table: sa.Table) -> None:
    """Mark the columns whose index is on SQLite's built-in lower(), and none on
    scim_lower(): compared with lower(), they keep the use of their index."""
    found = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table.name,),
    )
    indexes = [str(sql) for (sql,) in found]
    for column in table.columns:
        quoted = rf'"?{re.escape(column.name)}"?'
        built_in = re.compile(rf"(?<!\w)lower\(\s*{quoted}\s*\)", re.I)
        ours = re.compile(rf"scim_lower\(\s*{quoted}\s*\)", re.I)
        if any(built_in.search(sql) for sql in indexes) and not any(
            ours.search(sql) for sql in indexes
        ):
            column.info[BUILT_IN_LOWER] = True


_LOWER = re.compile(r'^lower\(\(?"?(?P<column>[^"():]+)"?(?:::text)?\)?(?:::text)?\)$')
"""An index expression lower(column), as PostgreSQL prints it back: lower(name::text)."""


def _caseless_unique_indexes(
    connection: sa.Connection, table: sa.Table, unique: Collection[str]
) -> dict[str, str]:
    """The unique indexes on lower(column) of the mapping's unique columns: column by
    index name."""
    found: dict[str, str] = {}
    for index in sa.inspect(connection).get_indexes(table.name, schema=table.schema):
        expressions = index.get("expressions") or []
        if not index["unique"] or len(expressions) != 1 or index["name"] is None:
            continue
        matched = _LOWER.match(expressions[0])
        column = _keys(table).get(matched["column"]) if matched is not None else None
        if column is not None and column in unique:
            found[index["name"]] = column
    return found


def _exact_unique_constraints(
    connection: sa.Connection, table: sa.Table, unique: Collection[str]
) -> dict[str, str]:
    """The unique constraints and indexes on exactly one of the mapping's unique columns:
    column by name."""
    found: dict[str, str] = {}
    keys = _keys(table)
    for name, columns in _unique_sets(connection, table):
        column = keys.get(columns[0] or "") if len(columns) == 1 else None
        if name is not None and column is not None and column in unique:
            found[name] = column
    return found


def _unique_ignoring_case(
    connection: sa.Connection, table: sa.Table, unique: Collection[str]
) -> dict[str, str]:
    """MariaDB: of the unique indexes on exactly one of the mapping's unique columns
    (`_exact_unique_constraints`), those whose column's collation ignores case (`_ci`, the
    default: utf8mb4_general_ci), column by index name. Such an index refuses `Alice`
    beside `alice`, as RFC 7643 §4.1.1 wants of a userName; one on a `_bin` or `_cs`
    column does not."""
    described = connection.execute(
        sa.text(
            "SELECT column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = :table"
        ),
        {"table": table.name},
    )
    ignoring_case = {
        str(column)
        for column, collation in described
        if collation and str(collation).lower().endswith("_ci")
    }
    return {
        name: key
        for name, key in _exact_unique_constraints(connection, table, unique).items()
        if table.c[key].name in ignoring_case
    }


def _unique_sets(
    connection: sa.Connection, table: sa.Table
) -> list[tuple[str | None, list[str | None]]]:
    """The unique constraints and unique indexes of a table: name and column names (None
    for an expression)."""
    inspector = sa.inspect(connection)
    named: list[tuple[str | None, list[str | None]]] = [
        (each["name"], list(each["column_names"]))
        for each in inspector.get_unique_constraints(table.name, schema=table.schema)
    ]
    named += [
        (each["name"], list(each["column_names"]))
        for each in inspector.get_indexes(table.name, schema=table.schema)
        if each["unique"] and not each.get("expressions")
    ]
    return named


def _identifies(connection: sa.Connection, table: sa.Table, key: sa.Column[Any]) -> bool:
    """Whether each row has its own value in `key`, for good: the SCIM id is made of it
    (RFC 7643 §3.1), and pages continue after the last key they showed. Its primary key
    alone, or a column UNIQUE and NOT NULL (a unique column may hold NULL many times)."""
    if list(table.primary_key.columns) == [key]:
        return True
    return not key.nullable and any(
        columns == [key.name] for _, columns in _unique_sets(connection, table)
    )


def _keys(table: sa.Table) -> dict[str, str]:
    """The mapping's name of each column (its key), by the column's name in the database."""
    return {column.name: column.key for column in table.columns}


def _names_in_other_case(
    connection: sa.Connection, schema: BackendSchema, existing: Collection[str]
) -> dict[tuple[str, str], str]:
    """The mapping's name of each column it spells in another case (`mixed` for "Mixed"),
    by table and column name. Field names compare case-insensitively (MySQL and SQLite
    ignore case in them; PostgreSQL does not, once quoted): a name matching one column
    only in case means that column; one matching several means none (see _missing)."""
    wanted: dict[str, list[str]] = {}
    for spec in (schema.users, schema.groups):
        if spec is not None:
            wanted.setdefault(spec.object, []).extend(_object_columns(spec))
    membership = schema.memberships
    if membership is not None and membership.object is not None:
        wanted.setdefault(membership.object, []).extend(
            name for name in (membership.group, membership.member) if name is not None
        )
    renamed: dict[tuple[str, str], str] = {}
    inspector = sa.inspect(connection)
    for table, names in wanted.items():
        if table not in existing:
            continue
        columns = [str(column["name"]) for column in inspector.get_columns(table)]
        for name in dict.fromkeys(names):
            if name in columns:
                continue
            matching = [column for column in columns if column.lower() == name.lower()]
            if len(matching) == 1:
                renamed[(table, matching[0])] = name
    return renamed


def _object_columns(spec: ObjectSpec) -> list[str]:
    stamps = [spec.created, spec.modified, spec.version]
    names = [spec.key, *(each.name for each in spec.fields), *stamps, *spec.constants]
    return list(dict.fromkeys(name for name in names if name is not None))


def _members(metadata: sa.MetaData, schema: BackendSchema, problems: list[str]) -> Members | None:
    membership = schema.memberships
    if membership is None:
        return None
    if membership.object is None or membership.group is None or membership.member is None:
        problems.append("the membership table needs a table, a group column and a member column")
        return None
    table = metadata.tables.get(membership.object)
    if table is None:
        return None
    missing = _missing(table, [membership.group, membership.member])
    problems.extend(missing)
    if missing:
        return None
    problems.extend(
        f"{mapping_origin(schema, 'groups.members')}: {line}"
        for line in _required(table, {membership.group, membership.member})
    )
    return Members(table, table.c[membership.group], table.c[membership.member])


FILLED_BY_TRIGGER = "scim_bridge_filled_by_trigger"
"""Set in a table's `info` when a trigger runs before each insert (it may set any column)."""

_INSERT_TRIGGERS = {
    "postgresql": "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "WHERE NOT t.tgisinternal AND t.tgtype & 7 = 7 AND pg_table_is_visible(c.oid)",
    "mysql": "SELECT event_object_table FROM information_schema.triggers "
    "WHERE event_object_schema = DATABASE() AND event_manipulation = 'INSERT' "
    "AND action_timing = 'BEFORE'",
    "mariadb": "SELECT event_object_table FROM information_schema.triggers "
    "WHERE event_object_schema = DATABASE() AND event_manipulation = 'INSERT' "
    "AND action_timing = 'BEFORE'",
}
"""The tables with a trigger that runs before each row is inserted, the only kind that can
set its columns, by dialect (PostgreSQL's tgtype bits: ROW 1, BEFORE 2, INSERT 4; MariaDB's
are all per row). SQLite's triggers cannot set the row being inserted."""


def _filled_by_triggers(connection: sa.Connection, names: list[str]) -> set[str]:
    query = _INSERT_TRIGGERS.get(connection.dialect.name)
    if query is None:
        return set()
    return {str(name) for name in connection.execute(sa.text(query)).scalars()} & set(names)


def _missing(table: sa.Table, names: list[str]) -> list[str]:
    """The names of the mapping that name no column, or several differing only in case."""
    problems = []
    for name in names:
        if name in table.c:
            continue
        matching = sorted(column.name for column in table.c if column.name.lower() == name.lower())
        if matching:
            spelled = " and ".join(f'"{column}"' for column in matching)
            problems.append(
                f'table "{table.name}" has columns {spelled}, which differ only in case: '
                f'name one exactly instead of "{name}"'
            )
        else:
            meant = did_you_mean(name, [column.name for column in table.c], BACKEND_NEAR)
            problems.append(f'table "{table.name}" has no column "{name}"{meant}')
    return problems


_CANNOT_HOLD = {
    # The SCIM types (mappings' ValueKind) that to_column() refuses for a column type.
    # A string into an integer column is converted when it spells one (employeeNumber).
    "string": (sa.Numeric, sa.Boolean),
    "boolean": (sa.String, sa.Numeric, sa.DateTime, sa.Date, sa.Uuid),
    "dateTime": (sa.Integer, sa.Numeric, sa.Boolean, sa.Uuid),
    "number": (sa.Boolean, sa.DateTime, sa.Date, sa.Uuid),
}


def _unfit(schema: BackendSchema, spec: ObjectSpec, table: sa.Table) -> list[str]:
    """Columns that cannot hold what the mapping writes, and required ones it never writes."""
    problems: list[str] = []
    for each in spec.fields:
        if each.name == ENABLED_BY_LOCATION:
            continue
        column = table.c[each.name]
        where = (
            f'{mapping_origin(schema, rule_key(spec, each))}: column "{column.name}" '
            f'of table "{table.name}"'
        )
        if each.multi_valued:  # an ARRAY too: filters compare it as one value (500)
            problems.append(
                f"{where} holds one value and the attribute several: give split, or map "
                'one entry (emails[type eq "work"].value)'
            )
            continue
        writes: str | None = getattr(each, "writes", None)
        if writes in _CANNOT_HOLD and isinstance(column.type, _CANNOT_HOLD[writes]):
            problems.append(f"{where} is of type {column.type}, which cannot hold a SCIM {writes}")
        refused = _refused(column, getattr(each, "stored", ()))
        if refused:
            problems.append(f"{where} cannot hold {refused}")
        longest: str | None = getattr(each, "longest", None)
        refused = _refused(column, (longest,)) if longest is not None else ""
        if refused:
            # Else `check` passed and every write of the attribute was refused (400).
            problems.append(f"{where} cannot hold every date its format writes, such as {refused}")
    for name, value in spec.constants.items():
        refused = _refused(table.c[name], (value,))
        if refused:
            where = mapping_origin(schema, f"{spec.kind.value}.constants.{name}")
            problems.append(
                f'{where}: column "{name}" of table "{table.name}" cannot hold {refused}'
            )
    written = {spec.key, spec.created, spec.modified, spec.version, *spec.constants}
    written |= {each.name for each in spec.fields}
    where = mapping_origin(schema, spec.kind.value)
    problems.extend(f"{where}: {line}" for line in _required(table, written))
    return problems


def _refused(column: sa.Column[Any], values: Collection[Any]) -> str:
    """The values the column refuses and why (`'A', 'T': the value is not a whole
    number`), empty when it takes them all."""
    refused: list[str] = []
    reason = ""
    for value in values:
        try:
            to_column(column, value, field=column.name)
        except InvalidValue as error:
            refused.append(repr(value))
            reason = error.message
    return f"{', '.join(refused)}: {reason}" if refused else ""


def _required(table: sa.Table, written: Collection[str | None]) -> list[str]:
    """The columns a new row needs a value for that nothing writes: every insert fails.
    Not known of a table with an insert trigger, which may fill them."""
    if table.info.get(FILLED_BY_TRIGGER):
        return []
    return [
        f'column "{column.name}" of table "{table.name}" is NOT NULL without a default and '
        "the mapping writes no value to it: every create would fail"
        for column in table.columns
        if column.key not in written
        and not column.info.get(NUMBERED)
        and not column.nullable
        and column.server_default is None
        and column.computed is None
        and column.identity is None
    ]


NUMBERED = "scim_bridge_numbered_by_database"
"""Set in an integer column's `info` when the database numbers new rows in it."""


def _numbered_by_database(connection: sa.Connection, table: sa.Table) -> list[sa.Column[Any]]:
    """The integer columns the database fills with a number of its own on insert: an
    identity, a sequence's default (SERIAL), AUTO_INCREMENT, or SQLite's alias of the rowid
    (a lone primary key declared exactly INTEGER: "INT PRIMARY KEY" is not one, and would
    take NULL)."""
    if connection.dialect.name == "sqlite":
        declared = connection.exec_driver_sql(f'PRAGMA table_info("{table.name}")').all()
        keys = [(name, str(kind)) for _, name, kind, _, _, key in declared if key]
        if len(keys) == 1 and keys[0][1].upper() == "INTEGER":
            return [column for column in table.columns if column.name == keys[0][0]]
        return []
    return [
        column
        for column in table.columns
        if isinstance(column.type, sa.Integer)
        and (
            column.identity is not None
            or column.server_default is not None
            or column.autoincrement is True
        )
    ]


def _unkeyable(schema: BackendSchema, spec: ObjectSpec, table: sa.Table) -> list[str]:
    """Why no new record could get a key in the key column (every create would fail), if
    so: the service makes text keys of 32 characters and UUIDs, and leaves an integer key
    to the database (new_key)."""
    if table.info.get(FILLED_BY_TRIGGER):
        return []
    column = table.c[spec.key]
    where = (
        f"{mapping_origin(schema, f'{spec.kind.value}.key')}: column "
        f'"{column.name}" of table "{table.name}"'
    )
    kind = column.type
    if isinstance(kind, sa.Integer):
        if column.info.get(NUMBERED):
            return []
        return [
            f"{where} is an integer the database does not number (no identity, sequence "
            "default or AUTO_INCREMENT), and the service makes no numbers: every create "
            "would fail. Give it one (GENERATED BY DEFAULT AS IDENTITY, SERIAL, "
            "AUTO_INCREMENT; on SQLite, INTEGER PRIMARY KEY), or make it a text or UUID "
            "column, for which the service makes keys"
        ]
    if isinstance(kind, sa.Uuid):
        return []
    if isinstance(kind, sa.String):
        if kind.length is not None and kind.length < KEY_LENGTH:
            return [
                f"{where} holds {kind.length} characters, and the keys the service makes "
                f"for new records have {KEY_LENGTH}: every create would fail"
            ]
        return []
    return [
        f"{where} is of type {kind}: the service makes keys for text columns "
        f"({KEY_LENGTH} characters) and UUID columns, and leaves integer keys to the database"
    ]


def _key_family(kind: sa.types.TypeEngine[Any]) -> str:
    """What a key column holds, as far as another column can hold it too."""
    if isinstance(kind, sa.Integer):
        return "whole numbers"
    if isinstance(kind, sa.Uuid):
        return "UUIDs"
    if isinstance(kind, sa.String):
        return "text"
    return str(kind)


def _unfit_references(
    schema: BackendSchema, users: Mapped | None, groups: Mapped | None
) -> list[str]:
    """Reference columns (a manager) that cannot hold the keys of the records they refer
    to: another type (an INTEGER column for keys of VARCHAR(32)), or text too short for
    them. Every write of the attribute would fail, and a filter on it compare unlike
    types."""
    referred = {Kind.USERS: users, Kind.GROUPS: groups}
    problems: list[str] = []
    for mapped in (each for each in (users, groups) if each is not None):
        for described in mapped.spec.fields:
            target = referred.get(described.reference) if described.reference else None
            column = mapped.table.c.get(described.name)
            key = target.table.c.get(target.spec.key) if target is not None else None
            if target is None or column is None or key is None:
                continue  # a missing column is a problem of its own (_missing)
            where = (
                f"{mapping_origin(schema, rule_key(mapped.spec, described))}: column "
                f'"{column.name}" of table "{mapped.table.name}" holds keys of table '
                f'"{target.table.name}"'
            )
            held, wanted = _key_family(column.type), _key_family(key.type)
            if held != wanted:
                problems.append(
                    f"{where}, which are {wanted} ({key.type}), but it holds {held} "
                    f'({column.type}): give it the type of "{key.name}"'
                )
                continue
            length = getattr(column.type, "length", None)
            needed = getattr(key.type, "length", None) or KEY_LENGTH
            if held == "text" and length is not None and length < needed:
                problems.append(
                    f"{where}, of up to {needed} characters, but it holds {length}: give "
                    f'it the type of "{key.name}"'
                )
    return problems


def _swapped_members(
    schema: BackendSchema, members: Members, users: Mapped, groups: Mapped
) -> list[str]:
    """The membership table's group and member columns named the wrong way round, as its
    foreign keys show: every membership would be written transposed (the API reading it
    back alike), and every other reader of the table would see the wrong ones."""
    if users.table.name == groups.table.name:
        return []

    def refers_to(column: sa.Column[Any]) -> set[str]:
        # "table.column" (or "schema.table.column"): the referred table need not be
        # reflected for its name to be read.
        return {foreign.target_fullname.split(".")[-2] for foreign in column.foreign_keys}

    if users.table.name in refers_to(members.group) or groups.table.name in refers_to(
        members.member
    ):
        return [
            f"{mapping_origin(schema, 'groups.members')}: the foreign keys of table "
            f'"{members.table.name}" make "{members.group.name}" (the group column here) '
            f'refer to a user or "{members.member.name}" (the member column) to a group: '
            "group and member seem swapped"
        ]
    return []
