"""The SQL connector: SCIM users and groups kept in existing tables.

It reflects the tables the mapping names and never migrates them. Every operation is
one transaction, wrapped at one place (connectors.sql.errors) so that driver errors
leave as the connector error family, and writes touch only what changed: adding one
member to a group of 50,000 inserts one row and reads none of the others.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import hashlib
import logging
import random
import re
from collections import defaultdict
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from connectors.base import (
    BackendSchema,
    Change,
    Conflict,
    ConnectorError,
    EventLost,
    InvalidValue,
    Journal,
    Kind,
    MemberChanges,
    MemberRef,
    NotFound,
    Page,
    PreconditionFailed,
    Query,
    Record,
    Sort,
    Unavailable,
    mapping_origin,
    no_such_members,
    rule_key,
)
from connectors.group_commit import MemberWritesTogether, UpdateTarget
from connectors.sql.caseless import folding
from connectors.sql.conditions import (
    LOOKUP_VALUE,
    Target,
    as_bytes,
    compile_condition,
    lookup_condition,
    lookup_shape,
)
from connectors.sql.embedded import create_default_tables, default_metadata, foreign_to_default
from connectors.sql.engine import WRITE_OPTION, live_connection, make_engine
from connectors.sql.errors import (
    RETRY_AFTER,
    RolledBack,
    missing_database,
    sqlite_file,
    translated_errors,
)
from connectors.sql.positions import Positions
from connectors.sql.settings import SqlSettings, parse_url
from connectors.sql.tables import Mapped, Members, Tables, missing_table, reflect
from connectors.sql.values import from_column, id_from_key, key_from_id, new_key, now, to_column

log = logging.getLogger("scim_bridge.sql")

_Parameters = ParamSpec("_Parameters")
_Result = TypeVar("_Result")

REDO_ATTEMPTS = 5
"""Times a write is made when the database rolls it back as a deadlock's victim (two
transactions that lock the same rows in opposite orders: a member added while the user
is deleted, on MariaDB); each time after a random pause of up to `attempt` x REDO_PAUSE."""

REDO_PAUSE = 0.01


def _redone_when_rolled_back(
    write: Callable[_Parameters, Coroutine[Any, Any, _Result]],
) -> Callable[_Parameters, Coroutine[Any, Any, _Result]]:
    """`write` made again, from the start, when the database rolled its transaction back
    (RolledBack): nothing of it was kept. The last attempt's error is the caller's (503)."""

    @functools.wraps(write)
    async def redone(*args: _Parameters.args, **kwargs: _Parameters.kwargs) -> _Result:
        for attempt in range(1, REDO_ATTEMPTS):
            try:
                return await write(*args, **kwargs)
            except RolledBack:
                log.info("a write was rolled back by the database (deadlock); redoing it")
                await asyncio.sleep(random.uniform(0, REDO_PAUSE * attempt))  # noqa: S311
        return await write(*args, **kwargs)

    return redone


CLAIM_WAIT = 10
"""Seconds a MariaDB write waits for another's claim on the same unique value (503 after)."""

_CLAIMED: contextvars.ContextVar[bool] = contextvars.ContextVar("_CLAIMED", default=False)
"""Named locks (MariaDB) are held by the block's connection, to release when it ends."""

_TOTAL = "scim_bridge_total"
"""The window count of a page query: a label no mapped column can have."""
_CHUNK = 1000
"""Keys per IN list: asyncpg caps a statement at 32,767 parameters."""

Row = sa.RowMapping


class SqlConnector(MemberWritesTogether):
    """The Connector protocol (connectors.base) over SQLAlchemy Core, asyncio."""

    def __init__(
        self,
        settings: SqlSettings,
        schema: BackendSchema,
        journal: Journal | None = None,
        *,
        rehearsal: bool = False,
    ) -> None:
        self.schema = schema
        self._settings = settings
        self._rehearsal = rehearsal
        """`scim-bridge check`: opening writes nothing (`_rehearse`)."""
        self._rehearsed: list[str] | None = None
        """The problems a rehearsal found (`_rehearse`)."""
        self.to_create: list[str] = []
        """The tables a rehearsal found missing, which the service creates at start."""
        self._journal = journal
        """Told of every write inside its transaction (the webhook outbox)."""
        self._engine: AsyncEngine | None = None
        self._writer: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._single_writer: AsyncEngine | None = None
        self._checker: AsyncEngine | None = None
        """MariaDB: connections of their own for the uniqueness reads of claimed values."""
        self._tables: Tables | None = None
        self._positions = Positions()
        self._member_writes = self._group_commit()
        self._creation_refused: str | None = None
        """Why create_tables would create no table the mapping uses, when it is set."""
        if settings.create_tables:
            foreign = foreign_to_default(schema)
            if foreign is not None:
                self._creation_refused = (
                    "create_tables creates the tables of the sql-default mapping (users, "
                    f"groups, memberships), and the mapping names {foreign}: create the "
                    "mapping's tables yourself and set create_tables = false"
                )

    # --- Lifetime ---------------------------------------------------------------------

    async def open(self) -> None:
        create = self._settings.create_tables and self._creation_refused is None
        missing = None if create else missing_database(parse_url(self._settings.url))
        if missing is not None:  # connecting would create an empty file
            if self._creation_refused is not None:
                raise Unavailable(self._creation_refused, retry_after=RETRY_AFTER)
            cause = FileNotFoundError(errno.ENOENT, missing)  # what the admin is told
            raise Unavailable(missing, retry_after=RETRY_AFTER) from cause
        if create and self._rehearsal:
            await self._rehearse()
            return
        self._member_writes = self._group_commit()  # closed with the connector before
        engine = make_engine(self._settings)
        try:
            with translated_errors():
                for attempt in range(1, CREATE_ATTEMPTS + 1):
                    try:
                        async with engine.begin() as connection:
                            if create:
                                await connection.run_sync(create_default_tables)
                            self._tables = await connection.run_sync(reflect, self.schema)
                        break
                    except sa_exc.DBAPIError:
                        # Another instance starting beside this one (replicas, not this
                        # one's workers, which start once it has) created them first:
                        # PostgreSQL says a duplicate type, MariaDB that the table exists.
                        # Looked at again, they are there.
                        if not create or attempt == CREATE_ATTEMPTS:
                            raise
                        await asyncio.sleep(random.uniform(0.05, 0.2) * attempt)  # noqa: S311
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._reader = engine
        self._single_writer = self._writer
        if engine.dialect.name == "postgresql":
            # A read needs no transaction of its own: without one, it saves the BEGIN and
            # COMMIT round trips. asyncpg switches to autocommit in the client; PyMySQL
            # would send a round trip to switch on each checkout and one to switch back,
            # more than its single COMMIT (its transactions begin implicitly), and
            # SQLite's transactions are local. A write of one statement is atomic by
            # itself (the INSERT ... RETURNING of a user): it goes without one too.
            self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._single_writer = self._reader

    async def close(self) -> None:
        await self._member_writes.close()
        if self._checker is not None:
            await self._checker.dispose()
            self._checker = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = self._writer = self._reader = self._single_writer = None

    async def _rehearse(self) -> None:
        """What opening with create_tables would find and create, with nothing written
        (`scim-bridge check`): the problems of the tables that exist, and `to_create`.

        A SQLite file that does not exist is not connected to (connecting creates it,
        which is the service's to do, and it may be starting beside this check): every
        table is to be created. Where DDL is transactional (SQLite, PostgreSQL), the
        tables are created in a transaction rolled back, so that what create_tables does
        to tables that exist is checked too; MySQL and MariaDB commit each CREATE TABLE
        by themselves, so there the missing tables are only named.
        """
        path = sqlite_file(parse_url(self._settings.url))
        if path is not None and not path.exists():
            self.to_create = list(default_metadata().tables)
            self._rehearsed = []
            return
        engine = make_engine(self._settings)
        try:
            with translated_errors():
                async with engine.connect() as connection:
                    self.to_create = await connection.run_sync(_missing_default_tables)
                    if connection.dialect.name in ("sqlite", "postgresql"):
                        await connection.run_sync(create_default_tables)
                        found = await connection.run_sync(reflect, self.schema)
                        await connection.rollback()
                        self._rehearsed = list(found.problems)
                    else:
                        found = await connection.run_sync(reflect, self.schema)
                        created = tuple(missing_table(name) for name in self.to_create)
                        self._rehearsed = [p for p in found.problems if not p.startswith(created)]
                        self._rehearsed += await self._statement_log_problems(connection)
        finally:
            await engine.dispose()

    async def verify(self, *, archives: Mapping[str, str] | None = None) -> list[str]:
        """Reflect again, so that a table fixed since open() no longer counts. No record
        is ever moved in a database (the configuration refuses `archives` here). A
        rehearsal's tables were rolled back: what it found in them stands."""
        refused = [self._creation_refused] if self._creation_refused is not None else []
        if self._rehearsed is not None:
            return [*refused, *self._rehearsed]
        with translated_errors():
            async with self._connected(write=False) as connection:
                self._tables = await connection.run_sync(reflect, self.schema)
                logged = await self._statement_log_problems(connection)
        self.warnings = (*self._unindexed_unique(), *self._credentials_in_clear())
        for line in self.warnings:
            log.warning("connector: %s", line)
        return [*refused, *self._tables.problems, *logged]

    async def _statement_log_problems(self, connection: AsyncConnection) -> list[str]:
        """A server that writes its binary log as statements (binlog_format = STATEMENT)
        refuses every InnoDB write made under READ COMMITTED (error 1665), and the writes
        that a synchronous webhook receiver may have to be put right after are made so
        (`_reading_what_committed`): every such request would fail, once served. Said
        here instead, with what to change. MIXED and ROW log those writes as rows."""
        if connection.dialect.name not in ("mysql", "mariadb"):
            return []
        if not _corrects(self._journal, tuple(Kind)):
            return []
        logged = await connection.execute(sa.text("SELECT @@log_bin, @@binlog_format"))
        binary_log, log_format = logged.one()
        if not binary_log or str(log_format).upper() != "STATEMENT":
            return []
        return [
            "the database writes its binary log as statements (binlog_format = STATEMENT), "
            "and then refuses the READ COMMITTED writes that a synchronous webhook receiver "
            "needs (error 1665): set binlog_format = MIXED or ROW on the server, or make "
            "the receivers asynchronous (synchronous = false)"
        ]

    warnings: tuple[str, ...] = ()
    """What the last verify() found worth saying that does not stop the service."""

    def _unindexed_unique(self) -> Iterator[str]:
        """Unique fields without a unique index on lower(column): the service checks them
        itself, one write at a time per value (_claim); a program writing the table
        directly is not held back, which an index would do."""
        if self._tables is None:
            return
        for mapped in (self._tables.users, self._tables.groups):
            if mapped is None:
                continue
            kind, table = mapped.spec.kind, mapped.table.name
            for name in _checked_unique(mapped, self._tables.dialect):
                column = mapped.table.c[name].name
                if self._tables.is_mysql:
                    # No index on an expression here (MariaDB): a collation that ignores
                    # case makes a plain unique index do it.
                    index = f"unique index on {column} in a collation that ignores case (_ci)"
                    add = f"ALTER TABLE {table} ADD UNIQUE ({column})"
                else:
                    index = f"unique index on lower({column})"
                    add = f"CREATE UNIQUE INDEX ON {table} (lower({column}))"
                yield (
                    f"{kind.value}: {name} is unique, and {table} has no {index}: the service "
                    "checks each value before writing it, one request at a time, but a program "
                    f"writing the table directly is not held back. Where you may, add one: {add}"
                )

    def _credentials_in_clear(self) -> Iterator[str]:
        """Columns the password goes to (a `returned: never` attribute, RFC 7643 §7): the
        service stores what the client sends, and a database hashes nothing by itself,
        unless a trigger of its own does (which the service cannot see)."""
        if self._tables is None:
            return
        mapped_tables = (self._tables.users, self._tables.groups)
        for mapped in (each for each in mapped_tables if each is not None):
            for field in mapped.spec.fields:
                if getattr(field, "secret", False):
                    column = mapped.table.c[field.name].name
                    yield (
                        f"{mapping_origin(self.schema, rule_key(mapped.spec, field))}: column "
                        f'"{column}" of table "{mapped.table.name}" receives the password as '
                        "the client sends it, in clear text: the service hashes nothing. Map "
                        "it only to a column a trigger of the database hashes, or leave "
                        "password unmapped"
                    )

    # --- Reading ----------------------------------------------------------------------

    async def get(
        self, kind: Kind, id: str, *, with_members: bool = False, with_groups: bool = False
    ) -> Record:
        mapped = self._mapped(kind)
        with translated_errors():
            async with self._connected(write=False) as connection:
                key = _key(mapped, id)
                return await self._fetch(connection, mapped, key, with_members, with_groups)

    async def search(self, kind: Kind, query: Query) -> Page:
        mapped = self._mapped(kind)
        target = Target(self._reflected, kind)
        shape = lookup_shape(target, query.where) if query.sort is None else None
        parameters: dict[str, Any] = {}
        if shape is not None and query.limit:  # a lookup: statements built once
            field, case_exact, value = shape
            counted, page = _lookup(target, field, case_exact)
            parameters = {LOOKUP_VALUE: value}
            page_parameters = {**parameters, "offset": query.offset, "limit": query.limit}
        else:
            where: sa.ColumnElement[bool] = sa.true()
            if query.where is not None:
                where = compile_condition(target, query.where)
            if query.sort is None and query.limit:
                return await self._page_in_key_order(kind, mapped, where, query, query.limit)
            counted, page = _count_and_page(
                mapped, where, self._order(mapped, query.sort), query.offset, query.limit
            )
            page_parameters = {}
        with translated_errors():
            async with self._connected(write=False) as connection:
                if query.limit == 0:
                    counting = await connection.execute(counted, parameters)
                    return Page(records=[], total=counting.scalar_one())
                rows = (await connection.execute(page, page_parameters)).mappings().all()
                if rows:
                    total = rows[0][_TOTAL]
                elif query.offset == 0:
                    total = 0
                else:  # past the last record: the window saw no row to count on
                    total = (await connection.execute(counted, parameters)).scalar_one()
                records = await self._records(
                    connection, mapped, rows, query.with_members, query.with_groups
                )
        return Page(records=records, total=total)

    async def _page_in_key_order(
        self,
        kind: Kind,
        mapped: Mapped,
        where: sa.ColumnElement[bool],
        query: Query,
        limit: int,
    ) -> Page:
        """A page in key order (no sortBy: what a client paging through everything asks).

        The page and the total are two statements: a window count beside the page would
        read and hold every matching row for each page. A page that continues a recent
        one starts after its last key (connectors.sql.positions) rather than skipping
        `offset` rows, so the last page of 100,000 costs what the first does.
        """
        shape = (kind, query.where)
        after = self._positions.after(shape, query.offset)
        page = sa.select(*mapped.selected).where(where).order_by(mapped.key.asc()).limit(limit)
        if after is not None:
            page = page.where(mapped.key > after)
        elif query.offset:
            page = page.offset(query.offset)
        with translated_errors():
            async with self._connected(write=False) as connection:
                rows = (await connection.execute(page)).mappings().all()
                if query.offset == 0 and len(rows) < limit:
                    total = len(rows)  # the whole result is this page
                else:
                    total = (await connection.execute(_counted(mapped, where))).scalar_one()
                records = await self._records(
                    connection, mapped, rows, query.with_members, query.with_groups
                )
        if rows:
            self._positions.remember(shape, query.offset + len(rows), rows[-1][mapped.key.key])
        return Page(records=records, total=total)

    # --- Writing ----------------------------------------------------------------------

    @_redone_when_rolled_back
    async def create(
        self, kind: Kind, values: Mapping[str, Any], *, members: Collection[str] = ()
    ) -> Record:
        mapped = self._mapped(kind)
        if members and kind is not Kind.GROUPS:
            raise InvalidValue("only groups have members", field="members")
        # A user is one INSERT ... RETURNING and nothing after it, unless the journal
        # writes its event in the same transaction. (A group is read back after its
        # insert: a failure of that read must not leave it written.)
        # Nor when a unique field is checked by the service, whose claim on the value
        # lasts as long as the transaction (_claim).
        one_write = (
            kind is Kind.USERS
            and self._journal is None
            and not _checked_unique(mapped, self._reflected.dialect)
        )
        with translated_errors():
            async with self._connected(
                write=True, one_write=one_write, tells=(kind,)
            ) as connection:
                row = await self._columns(connection, mapped, values, current_key=None)
                for name, value in mapped.spec.constants.items():
                    row[name] = to_column(mapped.table.c[name], value, field=name)
                _require(mapped, row)
                key = new_key(mapped.key)
                if key is not None:
                    row[mapped.spec.key] = key
                row.update(_stamps(mapped, created=True))
                # Absent values are left to the column's default, as a missing field is.
                row = {name: value for name, value in row.items() if value is not None}
                await _correctable_from_here(connection)
                if connection.dialect.insert_returning:
                    # The new row comes back with the insert: no second read.
                    with _unique_violations(mapped):
                        inserted = await connection.execute(_insert(mapped, returning=True), row)
                    stored = inserted.mappings().one()
                    key = stored[mapped.spec.key]
                else:
                    result = await connection.execute(_insert(mapped, returning=False), row)
                    if key is None:
                        returned = result.inserted_primary_key
                        if returned is None:
                            raise RuntimeError("the database returned no key for the new row")
                        key = returned[0]
                    stored = None
                if members:
                    users = self._mapped(Kind.USERS)
                    keys, unshaped = _member_keys(users, members)
                    await self._add_members(
                        connection, key, keys, skip_existing=False, unshaped=unshaped
                    )
                if stored is not None and kind is Kind.USERS:
                    created = _record(mapped, stored)  # a new user is in no group yet
                else:
                    created = await self._fetch(
                        connection, mapped, key, with_members=kind is Kind.GROUPS, with_groups=False
                    )
                joined = frozenset(member.id for member in created.members or [])
                await self._tell(connection, Change(kind, created.id, None, created, joined))
                return created

    @_redone_when_rolled_back
    async def _update_now(
        self,
        target: UpdateTarget,
        changes: Mapping[str, Any],
        members: MemberChanges | None,
        if_version: str | None,
    ) -> Record:
        kind, id, with_members, with_groups = target
        mapped = self._mapped(kind)
        with translated_errors():
            async with self._connected(write=True, tells=(kind,)) as connection:
                key = _key(mapped, id)
                locked = await self._locked_row(connection, mapped, key, if_version)
                before = _record(mapped, locked)
                row = await self._columns(connection, mapped, changes, current_key=key)
                for name, value in row.items():
                    if value is None and not mapped.table.c[name].nullable:
                        raise InvalidValue("a value is required", field=name)
                columns_changed = bool(row)
                stamped = _stamps(mapped, created=False)
                if row or members:
                    # The stamps go first: on PostgreSQL, updating the group's row after
                    # inserting memberships that refer to it holds its lock twice as long.
                    row.update(stamped)
                renamed = False
                if row:
                    with _unique_violations(mapped):
                        await connection.execute(
                            sa.update(mapped.table).where(mapped.key == key).values(row)
                        )
                    display = mapped.spec.display
                    renamed = display in row and row[display] != before.values.get(display)
                    if renamed and kind is Kind.GROUPS:
                        await self._touch_members(connection, key)
                joined: set[Any] = set()
                left: set[Any] = set()
                if members:
                    joined, left = await self._change_members(connection, key, members)
                if stamped and members and not (columns_changed or joined or left):
                    # Members already there added, absent ones removed: nothing changed,
                    # and the version a client holds stays valid.
                    await connection.execute(
                        sa.update(mapped.table)
                        .where(mapped.key == key)
                        .values({name: locked[name] for name in stamped})
                    )
                after = await self._fetch(connection, mapped, key, with_members, with_groups)
                if columns_changed or joined or left:
                    await self._tell(
                        connection,
                        Change(
                            kind,
                            after.id,
                            before,
                            after,
                            frozenset(id_from_key(Kind.USERS, each) for each in joined),
                            frozenset(id_from_key(Kind.USERS, each) for each in left),
                        ),
                    )
        if renamed and kind is Kind.USERS:
            try:
                await self._touch_those_showing(key)
            except (ConnectorError, sa_exc.SQLAlchemyError, OSError) as error:
                # The rename has committed and is answered; only the versions of the
                # records showing the old name lag, until their next write.
                kind_of_error = type(error).__name__  # SQLAlchemy's text quotes the values
                log.warning("renamed user: versions of its groups not renewed (%s)", kind_of_error)
        return after

    @_redone_when_rolled_back
    async def delete(self, kind: Kind, id: str, *, if_version: str | None = None) -> None:
        """Remove the record, its memberships and every reference to it, atomically."""
        mapped = self._mapped(kind)
        with translated_errors():
            async with self._connected(write=True) as connection:
                key = _key(mapped, id)
                groups: list[Any] = []
                if kind is Kind.USERS:
                    groups = await self._lock_groups_of(connection, key)
                before = await self._lock(connection, mapped, key, if_version)
                if kind is Kind.USERS:
                    groups = await self._groups_still_locked(connection, key, groups)
                followers = await self._followers(connection, kind, key, groups)
                await self._clear_references(connection, kind, key)
                await self._forget_memberships(connection, kind, key, groups)
                await connection.execute(sa.delete(mapped.table).where(mapped.key == key))
                await self._tell(connection, Change(kind, before.id, before, None))
                for follower in followers:
                    after = await self._fetch(
                        connection, follower.mapped, follower.key, False, False
                    )
                    await self._tell(
                        connection,
                        Change(
                            follower.mapped.spec.kind,
                            after.id,
                            follower.before,
                            after,
                            members_removed=follower.members_removed,
                        ),
                    )

    async def archive(
        self,
        kind: Kind,
        id: str,
        *,
        container: str,
        if_version: str | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> None:
        """Tables have no containers to move a row to (configuration refuses this first)."""
        raise InvalidValue("a SQL table has no container to move records to")

    # --- Transactions and tables --------------------------------------------------------

    @asynccontextmanager
    async def _connected(
        self, *, write: bool, one_write: bool = False, tells: Collection[Kind] = tuple(Kind)
    ) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction of its own, committed at the end of the block.

        `one_write`: the block's only statement after its reads is one write, which the
        database makes atomic by itself; where reads go without a transaction
        (PostgreSQL), so does it, saving the BEGIN and COMMIT round trips. `tells`: the
        kinds of the changes a write may tell the journal (every kind unless narrowed).
        """
        engine = (self._single_writer if one_write else self._writer) if write else self._reader
        if engine is None:
            raise RuntimeError("the SQL connector is not open")
        # A journal with a database of its own is told once the change has committed:
        # told inside, it would hold an event of a change a failed commit then undid.
        told: list[Change] | None = None
        if write and self._journal is not None and not _in_transaction(self._journal):
            if tells:  # else the change could be made without its event
                await self._journal.ready(tells)
            told = []
        savepoints: list[AsyncTransaction] | None = None
        if write and _corrects(self._journal, tells):
            savepoints = []
        failed: Exception | None = None
        token = _TOLD_AFTER_COMMIT.set(told)
        correctable = _CORRECTABLE.set(savepoints)
        try:
            # On an engine in autocommit, begin() sends nothing: each statement commits.
            async with live_connection(engine) as connection:
                claimed = _CLAIMED.set(False)
                try:
                    if savepoints is not None and connection.dialect.name in ("mysql", "mariadb"):
                        await _reading_what_committed(connection)
                    try:
                        async with connection.begin():
                            try:
                                yield connection
                            except Exception as error:
                                if not savepoints or not await _put_right_within(
                                    self._journal, connection, savepoints[0]
                                ):
                                    raise
                                failed = error  # what commits is the correction alone
                            else:
                                if savepoints:
                                    await savepoints[0].commit()
                    except BaseException:
                        _transaction_ended(self._journal, connection, committed=False)
                        raise
                    _transaction_ended(self._journal, connection, committed=True)
                finally:
                    if _CLAIMED.get():
                        await _release_claims(connection)
                    _CLAIMED.reset(claimed)
        finally:
            _CORRECTABLE.reset(correctable)
            _TOLD_AFTER_COMMIT.reset(token)
        if failed is not None:
            raise failed  # the request's own error, once its correction has committed
        if told and self._journal is not None:
            try:
                with translated_errors():
                    await self._journal.record(told, None)
            except Exception as error:
                # Asked before the transaction (ready), the store failed since: the log
                # names what lost its events (never their values) for reconciling, and
                # the client is not invited to retry (503) a change that has committed.
                for change in told:
                    log.error(
                        "the database committed a change to %s %s whose event could not be stored",
                        change.kind.resource_type,
                        change.id,
                    )
                raise EventLost() from error

    @property
    def _reflected(self) -> Tables:
        if self._tables is None:
            raise RuntimeError("the SQL connector is not open")
        return self._tables

    def _mapped(self, kind: Kind) -> Mapped:
        return self._reflected.of(kind)

    def _memberships(self) -> Members:
        members = self._reflected.members
        if members is None:
            raise InvalidValue("this service stores no memberships", field="members")
        return members

    # --- Records ------------------------------------------------------------------------

    async def _fetch(
        self,
        connection: AsyncConnection,
        mapped: Mapped,
        key: Any,
        with_members: bool,
        with_groups: bool,
    ) -> Record:
        found = await connection.execute(_by_key(mapped, lock=False), {"key": key})
        row = found.mappings().first()
        if row is None:
            raise NotFound(f"no {mapped.spec.kind.value} record has this id")
        [record] = await self._records(connection, mapped, [row], with_members, with_groups)
        return record

    async def _records(
        self,
        connection: AsyncConnection,
        mapped: Mapped,
        rows: Iterable[Row],
        with_members: bool,
        with_groups: bool,
    ) -> list[Record]:
        """Records for rows, with members or groups for all of them in one more query."""
        records = {row[mapped.spec.key]: _record(mapped, row) for row in rows}
        members = self._reflected.members
        if not records or members is None:
            return list(records.values())
        kind = mapped.spec.kind
        if kind is Kind.GROUPS and with_members:
            found = await self._neighbours(connection, members.group, Kind.USERS, records)
            for key, record in records.items():
                record.members = found.get(key, [])
        if kind is Kind.USERS and with_groups and self._reflected.groups is not None:
            found = await self._neighbours(connection, members.member, Kind.GROUPS, records)
            for key, record in records.items():
                record.groups = found.get(key, [])
        return list(records.values())

    async def _neighbours(
        self, connection: AsyncConnection, own: sa.Column[Any], kind: Kind, keys: Iterable[Any]
    ) -> dict[Any, list[MemberRef]]:
        """The `kind` records linked to each of `keys` (whose column is `own`)."""
        members = self._memberships()
        other = members.member if own is members.group else members.group
        linked = self._mapped(kind)
        display = _display(linked)
        shown_from = linked.table.c[linked.spec.display] if linked.spec.display else None
        found: dict[Any, list[MemberRef]] = defaultdict(list)

        def build() -> sa.Select[Any]:
            return (
                sa.select(own, linked.key, display)
                .select_from(members.table.join(linked.table, other == linked.key))
                .where(own.in_(sa.bindparam("owners", expanding=True)))
                .order_by(own, linked.key)
            )

        statement = _statement(linked, ("neighbours", own.table.name, own.name), build)
        for chunk in _chunks(keys):
            for owner, key, shown in await connection.execute(statement, {"owners": chunk}):
                shown = from_column(shown, shown_from)  # a display kept in NUMERIC, too
                found[owner].append(MemberRef(id=id_from_key(kind, key), display=shown))
        return found

    def _order(self, mapped: Mapped, sort: Sort | None) -> list[sa.ColumnElement[Any]]:
        """The sort field, then the key (a stable order for paging, RFC 7644 §3.4.2.4).

        Records without a value come last when ascending and first when descending
        (RFC 7644 §3.4.2.3), whatever the database's own place for NULL.
        """
        order: list[sa.ColumnElement[Any]] = []
        if sort is not None:
            column = mapped.column(sort.field)
            value: sa.ColumnElement[Any] = column
            if mapped.is_text(sort.field) and not sort.case_exact:
                value = folding(column)(column)
            elif mapped.is_text(sort.field) and self._reflected.is_mysql:
                value = as_bytes(column)
            missing: sa.ColumnElement[bool] = column.is_(None)
            if sort.ranks:  # a map: the rank of the SCIM value, not the stored value
                value = self._ranked(mapped, column, sort)
                missing = value.is_(None)
            elif sort.empty is not None:  # the stand-in written for no value, as none
                missing = sa.or_(missing, column == sort.empty)
                value = sa.case((missing, sa.null()), else_=value)
            absent = sa.case((missing, 1), else_=0)
            if sort.descending:
                order = [absent.desc(), value.desc()]
            else:
                order = [absent.asc(), value.asc()]
        order.append(mapped.key.asc())
        return order

    def _ranked(self, mapped: Mapped, column: sa.Column[Any], sort: Sort) -> sa.ColumnElement[Any]:
        """CASE column WHEN stored value THEN its rank ... ELSE NULL (see Sort.ranks).

        The stored values compare as the mapping reads them back: exactly, so text
        compares as bytes on MariaDB, whose default collations ignore case. A value the
        column cannot hold is no row's, and is left out; no value (or the `empty`
        stand-in) ranks as `absent_rank`, a value not listed as `unlisted_rank`, either
        NULL when it reads as no value, ordered with the rows that hold none.
        """
        exact = self._reflected.is_mysql and mapped.is_text(sort.field)
        stored: sa.ColumnElement[Any] = as_bytes(column) if exact else column
        nothing: sa.ColumnElement[bool] = column.is_(None)
        if sort.empty is not None:
            nothing = sa.or_(nothing, column == sort.empty)
        absent = sa.null() if sort.absent_rank is None else sa.literal(sort.absent_rank)
        whens: list[tuple[sa.ColumnElement[bool], Any]] = [(nothing, absent)]
        for value, rank in sort.ranks:
            try:
                bound = to_column(column, value, field=sort.field, stored=False)
            except InvalidValue:
                continue
            literal: sa.ColumnElement[Any] = sa.literal(bound, column.type)
            whens.append((stored == (as_bytes(literal) if exact else literal), rank))
        unlisted = sa.null() if sort.unlisted_rank is None else sa.literal(sort.unlisted_rank)
        return sa.case(*whens, else_=unlisted)

    # --- Writes -------------------------------------------------------------------------

    async def _lock(
        self, connection: AsyncConnection, mapped: Mapped, key: Any, if_version: str | None
    ) -> Record:
        """Read the row for update; NotFound, or PreconditionFailed on a stale version."""
        return _record(mapped, await self._locked_row(connection, mapped, key, if_version))

    async def _locked_row(
        self, connection: AsyncConnection, mapped: Mapped, key: Any, if_version: str | None
    ) -> sa.RowMapping:
        """`_lock`, with the row's columns as stored."""
        found = await connection.execute(_by_key(mapped, lock=True), {"key": key})
        row: sa.RowMapping | None = found.mappings().first()
        if row is None:
            raise NotFound(f"no {mapped.spec.kind.value} record has this id")
        if if_version is not None and _version(mapped, row) != if_version:
            raise PreconditionFailed("the record has changed since it was read")
        await _correctable_from_here(connection)
        return row

    async def _tell(self, connection: AsyncConnection, change: Change) -> None:
        """Record a write in the journal, in its transaction: both commit, or neither (or,
        for a journal with a database of its own, once the transaction has committed)."""
        waiting = _TOLD_AFTER_COMMIT.get()
        if waiting is not None:
            waiting.append(change)
        elif self._journal is not None:
            await self._journal.record([change], connection)

    async def _columns(
        self,
        connection: AsyncConnection,
        mapped: Mapped,
        values: Mapping[str, Any],
        *,
        current_key: Any,
    ) -> dict[str, Any]:
        """Column values for field values: coerced, references resolved, uniqueness checked."""
        row: dict[str, Any] = {}
        for name, value in values.items():
            described = mapped.spec.field_named(name)
            if described is None:
                raise ValueError(f"{name!r} is not a mapped field of {mapped.spec.kind.value}")
            if described.reference is not None and value is not None:
                row[name] = await self._reference(connection, described.reference, value, name)
            else:
                row[name] = to_column(mapped.table.c[name], value, field=name)
        enforced = mapped.caseless_unique.values()
        claimed = _checked_unique(mapped, self._reflected.dialect)
        for name in mapped.spec.unique:
            value = row.get(name)
            if value is not None and not (isinstance(value, str) and name in enforced):
                if name in claimed:
                    folded = value.lower() if isinstance(value, str) else str(value)
                    await self._claim(connection, f"unique:{mapped.table.name}:{name}:{folded}")
                await self._unique(
                    connection, mapped, name, value, current_key, claimed=name in claimed
                )
        return row

    async def _claim(self, connection: AsyncConnection, name: str) -> None:
        """Hold a lock named `name` until the transaction ends, across workers.

        A unique field without a unique index on lower(column) is checked by a SELECT
        before the write; two requests with one value, each checking before the other
        wrote, both found it free (a probe made ten users of one userName). Claimed
        first, the second waits for the first to end, then finds its row. PostgreSQL:
        an advisory transaction lock. MariaDB: a named lock, released once the
        transaction ends (_connected), and the check then reads outside the
        transaction, whose snapshot (REPEATABLE READ) may predate the first's commit.
        SQLite's writers take turns already (BEGIN IMMEDIATE).
        """
        digest = hashlib.sha256(name.encode()).digest()
        dialect = connection.dialect.name
        if dialect == "postgresql":
            key = int.from_bytes(digest[:8], "big", signed=True)
            await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        elif dialect in ("mysql", "mariadb"):
            lock = f"scim-bridge:{digest.hex()[:40]}"
            statement = sa.select(sa.func.get_lock(lock, CLAIM_WAIT))
            got = (await connection.execute(statement)).scalar()
            _CLAIMED.set(True)
            if got != 1:
                raise Unavailable("the value is being written by another request; retry")

    async def _reference(self, connection: AsyncConnection, kind: Kind, id: Any, field: str) -> Any:
        linked = self._mapped(kind)
        key = key_from_id(kind, linked.key, str(id))
        if key is not None:
            # Share-locked: a deletion of that record (which locks it for update, then
            # clears the references to it) waits for this write, then clears this one
            # too; or this waits for the deletion, and finds the record gone. Unlocked,
            # a reference written meanwhile outlived its record on PostgreSQL.
            statement = (
                sa.select(linked.key)
                .where(linked.key == key)
                .with_for_update(read=True, key_share=True)
            )
            if (await connection.execute(statement)).first() is not None:
                return key
        raise InvalidValue(f"no {kind.value} record has the id {id!r}", field=field)

    async def _unique(
        self,
        connection: AsyncConnection,
        mapped: Mapped,
        name: str,
        value: Any,
        current: Any,
        *,
        claimed: bool,
    ) -> None:
        """RFC 7644 §3.3: 409 when another record holds the value, ignoring case."""
        statement = _taken(mapped, name, text=isinstance(value, str), other=current is not None)
        parameters = {"value": value, "current": current}
        if claimed and connection.dialect.name in ("mysql", "mariadb"):
            # Read in a transaction of its own (this one's snapshot may predate the
            # commit of the claim's last holder), on connections of their own: those of
            # the pool may all be held by writes waiting for this claim.
            if self._checker is None:
                self._checker = make_engine(self._settings)
            async with live_connection(self._checker) as reader, reader.begin():
                found = await reader.execute(statement, parameters)
                taken = found.first() is not None
        else:
            taken = (await connection.execute(statement, parameters)).first() is not None
        if taken:
            raise Conflict("the value is already taken by another record", field=name)

    async def _add_members(
        self,
        connection: AsyncConnection,
        group: Any,
        keys: set[Any],
        *,
        skip_existing: bool,
        unshaped: Collection[str] = (),
    ) -> set[Any]:
        """Insert membership rows for user keys, each checked to name a user; InvalidValue
        naming every id that names none: those of `keys` no row has, and `unshaped`, the
        ids sent that cannot be keys at all (nothing is inserted then).

        The users are locked first, in key order, as their new versions will lock them:
        the foreign key's check of each insert would otherwise take a shared lock on the
        user, and two transactions adding one user to two groups, each holding it shared
        and then wanting it for its new version, were each other's deadlock on MariaDB
        (one in eight runs of twelve at once answered a 503 after five redos). PostgreSQL's
        key-share locks do not conflict so: there the lock taken is the weaker FOR NO KEY
        UPDATE, which the version's update takes anyway.

        Returns the keys of the users that joined (not those that were members already).
        """
        users = self._mapped(Kind.USERS)
        members = self._memberships()
        joined: set[Any] = set()
        missing = list(unshaped)
        for chunk in _chunks(sorted(keys)):
            statement = (
                sa.select(users.key)
                .where(users.key.in_(chunk))
                .order_by(users.key)
                .with_for_update(key_share=True)
            )
            found = set((await connection.execute(statement)).scalars())
            if missing or len(found) != len(chunk):
                missing += (id_from_key(Kind.USERS, key) for key in chunk if key not in found)
                continue  # refused below, once every chunk has said which are missing
            if skip_existing:
                statement = sa.select(members.member).where(
                    members.group == group, members.member.in_(chunk)
                )
                found -= set((await connection.execute(statement)).scalars())
            if found:
                rows = [{members.group.key: group, members.member.key: key} for key in found]
                await connection.execute(sa.insert(members.table), rows)
                await self._touch(connection, users, users.key.in_(list(found)))
                joined |= found
        if missing:  # the transaction rolls back what earlier chunks inserted
            raise no_such_members(missing)
        return joined

    async def _remove_members(
        self, connection: AsyncConnection, group: Any, keys: set[Any]
    ) -> set[Any]:
        """Delete membership rows; returns the keys of the users that really left."""
        members = self._memberships()
        users = self._mapped(Kind.USERS)
        left: set[Any] = set()
        for chunk in _chunks(keys):
            statement = sa.select(members.member).where(
                members.group == group, members.member.in_(chunk)
            )
            removed = set((await connection.execute(statement)).scalars())
            if removed:
                await connection.execute(
                    sa.delete(members.table).where(
                        members.group == group, members.member.in_(removed)
                    )
                )
                await self._touch(connection, users, users.key.in_(list(removed)))
                left |= removed
        return left

    @staticmethod
    async def _touch(
        connection: AsyncConnection, mapped: Mapped, condition: sa.ColumnElement[bool]
    ) -> None:
        """The records `condition` selects get a new version: what they show changed
        without a write of their own (a user's groups, a group's name)."""
        stamps = _stamps(mapped, created=False)
        if stamps:
            await connection.execute(sa.update(mapped.table).where(condition).values(stamps))

    async def _touch_members(self, connection: AsyncConnection, group: Any) -> None:
        """A renamed group's members get new versions: each shows the group's name in its
        `groups`, so its representation changed (RFC 7644 §3.14). In the rename's own
        transaction, after the group's row, as a member change locks them."""
        users, members = self._reflected.users, self._reflected.members
        if users is not None and members is not None:
            showing = sa.select(members.member).where(members.group == group)
            await self._touch(connection, users, users.key.in_(showing))

    async def _touch_those_showing(self, user: Any) -> None:
        """A renamed user's groups (their `members`) and the users it manages (their
        `manager.displayName`) get new versions, in a transaction of their own once the
        rename has committed: holding the user's row while locking its groups' would
        deadlock with a member change, which locks the group first, then the user."""
        members, groups = self._reflected.members, self._reflected.groups
        async with self._connected(write=True, tells=()) as connection:  # versions only
            if members is not None and groups is not None:
                showing = sa.select(members.group).where(members.member == user)
                await self._touch(connection, groups, groups.key.in_(showing))
            for mapped, column in self._references_to(Kind.USERS):
                await self._touch(connection, mapped, column == user)

    async def _change_members(
        self, connection: AsyncConnection, group: Any, changes: MemberChanges
    ) -> tuple[set[Any], set[Any]]:
        """Apply member changes; the keys of the users that joined, and of those that left."""
        users = self._mapped(Kind.USERS)
        members = self._memberships()
        if changes.replace is not None:
            # The one case that reads every member: the client sent the whole set.
            statement = sa.select(members.member).where(members.group == group)
            current = set((await connection.execute(statement)).scalars())
            wanted, unshaped = _member_keys(users, changes.replace)
            left = await self._remove_members(connection, group, current - wanted)
            joined = await self._add_members(
                connection, group, wanted - current, skip_existing=False, unshaped=unshaped
            )
            return joined, left
        # An id that cannot be a key cannot be a member either: nothing to remove.
        removed, _ = _member_keys(users, changes.removed)
        left = await self._remove_members(connection, group, removed)
        added, unshaped = _member_keys(users, changes.added)
        joined = await self._add_members(
            connection, group, added, skip_existing=True, unshaped=unshaped
        )
        return joined, left

    async def _lock_groups_of(self, connection: AsyncConnection, user_key: Any) -> list[Any]:
        """Lock the groups of a user about to be deleted, in key order, before the user
        itself; their keys.

        A member change locks the group, then the user it adds (the foreign key's check,
        and the user's new version). A deletion that locked the user first, then its
        groups (to change their versions, by a statement that on MariaDB also locked
        every group it looked at), deadlocked with it: with two workers, a third of such
        races were redone five times, then answered 503.
        """
        members, groups = self._reflected.members, self._reflected.groups
        if members is None or groups is None:
            return []
        # Two statements: a locking read with the memberships in a subquery would lock
        # (or, on MariaDB, gap-lock) those rows too, which member changes insert.
        keys = await _groups_of(connection, members, user_key, lock=False)
        for chunk in _chunks(keys):
            await connection.execute(
                sa.select(groups.key)
                .where(groups.key.in_(chunk))
                .order_by(groups.key)
                .with_for_update()
            )
        return keys

    async def _groups_still_locked(
        self, connection: AsyncConnection, user_key: Any, locked: list[Any]
    ) -> list[Any]:
        """The user's groups now that the user is locked (no member change can add it
        anywhere any more): those of `locked` it is still in. One it joined since they
        were locked would have to be locked after the user, against the order above:
        the deletion is made again instead (RolledBack), locking it first this time."""
        members = self._reflected.members
        if members is None or self._reflected.groups is None:
            return []
        # A locking read: it sees what committed after this transaction's first read.
        keys = await _groups_of(connection, members, user_key, lock=True)
        if not set(keys) <= set(locked):
            raise RolledBack()
        return keys

    async def _followers(
        self, connection: AsyncConnection, kind: Kind, key: Any, groups_of_user: list[Any]
    ) -> list[_Follower]:
        """The other records a deletion changes, as they are before it: those that refer
        to the deleted one (a manager), and a deleted user's groups, which lose a member.
        Each is a change of its own for the journal (a webhook receiver keeps a manager
        too); without a journal, nothing is read."""
        if self._journal is None:
            return []
        found: dict[tuple[Kind, Any], _Follower] = {}
        # Locking reads (the rows are locked already, or about to be changed): on
        # MariaDB, a plain read sees the snapshot of the transaction's first read, which
        # came before the record itself was locked.
        for mapped, column in self._references_to(kind):
            rows = await connection.execute(
                sa.select(*mapped.selected).where(column == key).with_for_update()
            )
            self._follow(found, mapped, rows.mappings())
        members, groups = self._reflected.members, self._reflected.groups
        if kind is Kind.USERS and members is not None and groups is not None:
            left = frozenset({id_from_key(Kind.USERS, key)})
            for chunk in _chunks(groups_of_user):
                rows = await connection.execute(
                    sa.select(*groups.selected).where(groups.key.in_(chunk)).with_for_update()
                )
                self._follow(found, groups, rows.mappings(), members_removed=left)
        found.pop((kind, key), None)  # a user that managed itself goes with the deletion
        return list(found.values())

    @staticmethod
    def _follow(
        found: dict[tuple[Kind, Any], _Follower],
        mapped: Mapped,
        rows: Iterable[Row],
        members_removed: frozenset[str] = frozenset(),
    ) -> None:
        for row in rows:
            row_key = row[mapped.spec.key]
            known = found.get((mapped.spec.kind, row_key))
            if known is None:
                known = _Follower(mapped, row_key, _record(mapped, row))
                found[(mapped.spec.kind, row_key)] = known
            known.members_removed |= members_removed

    async def _clear_references(self, connection: AsyncConnection, kind: Kind, key: Any) -> None:
        """Fields of other records that refer to a deleted one (a manager) become empty."""
        for mapped, column in self._references_to(kind):
            values = {column.key: None, **_stamps(mapped, created=False)}
            await connection.execute(sa.update(mapped.table).where(column == key).values(values))

    def _references_to(self, kind: Kind) -> Iterator[tuple[Mapped, sa.Column[Any]]]:
        """The columns that hold references to records of `kind` (a user's manager)."""
        for mapped in (self._reflected.users, self._reflected.groups):
            if mapped is None:
                continue
            for described in mapped.spec.fields:
                if described.reference is kind:
                    yield mapped, mapped.table.c[described.name]

    async def _forget_memberships(
        self, connection: AsyncConnection, kind: Kind, key: Any, groups_of_user: list[Any]
    ) -> None:
        """Remove the record's memberships; the groups of a user (`groups_of_user`, all
        locked) or the members of a group get a new version."""
        members = self._reflected.members
        groups = self._reflected.groups
        if members is None:
            return
        own = members.member if kind is Kind.USERS else members.group
        stamps = _stamps(groups, created=False) if groups is not None else {}
        if kind is Kind.USERS and groups is not None and stamps:
            # The user's groups lose a member: a change to each of them. By their keys:
            # with the memberships in a subquery, MariaDB locked every group it read.
            for chunk in _chunks(groups_of_user):
                await connection.execute(
                    sa.update(groups.table).where(groups.key.in_(chunk)).values(stamps)
                )
        if kind is Kind.GROUPS:
            # The group's members lose a group: a change to each of them.
            users = self._mapped(Kind.USERS)
            of_group = sa.select(members.member).where(members.group == key)
            stamps = _stamps(users, created=False)
            if stamps:
                await connection.execute(
                    sa.update(users.table)
                    .where(users.key.in_(of_group.scalar_subquery()))
                    .values(stamps)
                )
        await connection.execute(sa.delete(members.table).where(own == key))


_TOLD_AFTER_COMMIT: contextvars.ContextVar[list[Change] | None] = contextvars.ContextVar(
    "told_after_commit", default=None
)
"""The changes of the write under way, for a journal told after its commit."""


def _transaction_ended(
    journal: Journal | None, connection: AsyncConnection, *, committed: bool
) -> None:
    """Tell a journal that records in the connector's transactions how one of them ended
    (its `committed` or `abandoned`, when it has them): one that rolled back may have had
    its first event taken by a synchronous receiver, which must then be put right."""
    if journal is None or not _in_transaction(journal):
        return
    ended = getattr(journal, "committed" if committed else "abandoned", None)
    if ended is not None:
        ended(connection)


CREATE_ATTEMPTS = 3
"""Times create_tables tries, when another instance creates the same tables meanwhile."""

_CORRECTABLE: contextvars.ContextVar[list[AsyncTransaction] | None] = contextvars.ContextVar(
    "correctable", default=None
)
"""The savepoint of the write under way, once taken (`_correctable_from_here`), when its
journal may have to put a synchronous receiver right; None when it never has to."""


async def _correctable_from_here(connection: AsyncConnection) -> None:
    """Keep a savepoint here, once per transaction, when a failed write may have to commit
    what puts a synchronous receiver right (`_put_right_within`).

    Here: after the row the change is about is locked (or before a new row is inserted).
    Rolling back to a savepoint releases the locks taken after it (PostgreSQL does, and
    MariaDB 10.11 did when checked here): one taken before it, the row stays locked until
    the correction commits, and a request on the resource that waits for it then finds
    the correction.
    """
    savepoints = _CORRECTABLE.get()
    if savepoints is not None and not savepoints:
        savepoints.append(await connection.begin_nested())


async def _reading_what_committed(connection: AsyncConnection) -> None:
    """READ COMMITTED for this connection's next transaction (MariaDB, MySQL), as on
    PostgreSQL: once a write that may need correcting holds its row, the journal asks the
    outbox whether a correction of an earlier request on it waits (`_in_order`). Under
    REPEATABLE READ, a read made before the row was locked (a deletion reads the user's
    groups first) fixed the transaction's snapshot, and the outbox, read through it,
    missed the correction committed meanwhile. The pool resets the level on return."""
    await connection.execution_options(isolation_level="READ COMMITTED")


def _corrects(journal: Journal | None, kinds: Collection[Kind]) -> bool:
    """Whether a write telling changes of `kinds` to a journal in its transaction keeps a
    savepoint (`_correctable_from_here`), for putting a synchronous receiver right."""
    if journal is None or not _in_transaction(journal):
        return False
    corrects = getattr(journal, "corrects", None)
    return corrects is not None and bool(corrects(kinds))


async def _put_right_within(
    journal: Journal | None, connection: AsyncConnection, savepoint: AsyncTransaction
) -> bool:
    """Undo a failed write back to `savepoint` and have the journal store there what puts
    its synchronous receivers right (`put_right_within`); True when the transaction is
    then to commit with only that. False when there is nothing to put right, or it could
    not be stored (a lost connection): the transaction rolls back, and the journal is told
    it was abandoned."""
    put_right = getattr(journal, "put_right_within", None)
    holds = getattr(journal, "holds_taken", None)
    if put_right is None or holds is None or not holds(connection):
        return False  # nothing to put right: the transaction rolls back as any other
    try:
        await savepoint.rollback()
        return bool(await put_right(connection))
    except Exception as error:  # the names of what it was about are logged by the journal
        log.warning(
            "the correction of a failed write could not be stored with it (%s); it is stored apart",
            type(error).__name__,
        )
        return False


def _in_transaction(journal: Journal) -> bool:
    """Whether the journal writes in the connector's transaction (it says so by
    `in_transaction`; one that does not say is taken to)."""
    return bool(getattr(journal, "in_transaction", True))


@dataclass
class _Follower:
    """A record a deletion changes, with what it was before."""

    mapped: Mapped
    key: Any
    before: Record
    members_removed: frozenset[str] = frozenset()


# --- Statements built once per table ------------------------------------------------------
#
# Executed with parameters: building a statement, and the cache key of its compiled form,
# costs SQLAlchemy more than running it, in the writes and lookups every request makes.
# They are kept in the reflected table's `info`, which lives as long as the reflection.


def _statement(mapped: Mapped, name: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    cache: dict[tuple[Any, ...], Any] = mapped.table.info.setdefault("scim_bridge", {})
    if name not in cache:
        cache[name] = build()
    return cache[name]


def _count_and_page(
    mapped: Mapped,
    where: sa.ColumnElement[bool],
    order: list[sa.ColumnElement[Any]],
    offset: int | sa.BindParameter[int],
    limit: int | sa.BindParameter[int] | None,
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The count of the records matching `where`, and a page of them with that count
    beside each row (a window count: the total rides along with the page)."""
    page = (
        sa.select(*mapped.selected, sa.func.count().over().label(_TOTAL))
        .where(where)
        .order_by(*order)
        .offset(offset)
        .limit(limit)
    )
    return _counted(mapped, where), page


def _counted(mapped: Mapped, where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """How many records match `where`."""
    return sa.select(sa.func.count()).select_from(mapped.table).where(where)


def _missing_default_tables(connection: sa.Connection) -> list[str]:
    present = set(sa.inspect(connection).get_table_names())
    return [name for name in default_metadata().tables if name not in present]


def _lookup(target: Target, field: str, case_exact: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The count and the page of a lookup (see conditions.lookup_shape), with the value,
    the offset and the limit as parameters."""
    mapped = target.mapped

    def build() -> tuple[sa.Select[Any], sa.Select[Any]]:
        # At most one row matches a caseless-unique column: no order is needed. Nor wanted:
        # with ORDER BY key and a LIMIT, PostgreSQL may walk the primary key hoping to meet
        # the one row early, which reads the whole table for every user that does not exist
        # yet (the lookups of an initial sync) as long as the table has no statistics.
        unique = not case_exact and field in mapped.caseless_unique.values()
        return _count_and_page(
            mapped,
            lookup_condition(target, field, case_exact),
            [] if unique else [mapped.key.asc()],
            sa.bindparam("offset", type_=sa.Integer()),
            sa.bindparam("limit", type_=sa.Integer()),
        )

    return _statement(mapped, ("lookup", field, case_exact), build)  # type: ignore[no-any-return]


def _by_key(mapped: Mapped, *, lock: bool) -> sa.Select[Any]:
    def build() -> sa.Select[Any]:
        statement = sa.select(*mapped.selected).where(mapped.key == sa.bindparam("key"))
        return statement.with_for_update() if lock else statement

    return _statement(mapped, ("by_key", lock), build)  # type: ignore[no-any-return]


async def _groups_of(
    connection: AsyncConnection, members: Members, user_key: Any, *, lock: bool
) -> list[Any]:
    """The keys of the groups the user is in, in order; with `lock`, a locking read."""
    of_user = sa.select(members.group).where(members.member == user_key)
    if lock:
        of_user = of_user.with_for_update()
    return sorted(set((await connection.execute(of_user)).scalars()))


def _checked_unique(mapped: Mapped, dialect: str) -> list[str]:
    """The unique fields only the service's own check keeps unique, ignoring case (which
    it then claims, _claim): those without a unique index that ignores case
    (`caseless_unique`). SQLite's writers take turns: none there."""
    if dialect == "sqlite":
        return []
    enforced = set(mapped.caseless_unique.values())
    return [name for name in mapped.spec.unique if name not in enforced]


async def _release_claims(connection: AsyncConnection) -> None:
    """Release a MariaDB connection's named locks, its transaction ended (they outlive
    it, and the connection goes back to the pool). A connection that fails here is
    dropped, and its locks with it."""
    try:
        await connection.execute(sa.select(sa.func.release_all_locks()))
        await connection.commit()
    except Exception:
        log.warning("a connection could not release its locks; it is closed")
        await connection.invalidate()


def _taken(mapped: Mapped, name: str, *, text: bool, other: bool) -> sa.Select[Any]:
    """Another record holding `value` in `name` (ignoring case for text): RFC 7644 §3.3."""

    def build() -> sa.Select[Any]:
        column = mapped.table.c[name]
        taken: sa.ColumnElement[bool] = column == sa.bindparam("value")
        if text:
            fold = folding(column)
            taken = fold(column) == fold(sa.bindparam("value", type_=sa.String()))
        if other:
            taken = sa.and_(taken, mapped.key != sa.bindparam("current"))
        return sa.select(mapped.key).where(taken).limit(1)

    return _statement(mapped, ("taken", name, text, other), build)  # type: ignore[no-any-return]


def _insert(mapped: Mapped, *, returning: bool) -> sa.Insert:
    def build() -> sa.Insert:
        statement = sa.insert(mapped.table)
        return statement.returning(*mapped.selected) if returning else statement

    return _statement(mapped, ("insert", returning), build)  # type: ignore[no-any-return]


# --- Helpers ----------------------------------------------------------------------------


@contextmanager
def _unique_violations(mapped: Mapped) -> Iterator[None]:
    """A write refused by a unique index on lower(column), or by a plain one on the same
    column, is a 409 on that field (RFC 7644 §3.3), as the check it replaces would have
    reported it."""
    try:
        yield
    except sa_exc.IntegrityError as error:
        index = _refusing_index(error)
        field = None
        if index is not None:
            field = mapped.caseless_unique.get(index) or mapped.exact_unique.get(index)
        if field is None:
            raise
        raise Conflict("the value is already taken by another record", field=field) from None


_DUPLICATE_ENTRY = 1062
"""MariaDB's (and MySQL's) error number for a row refused by a unique index."""
_DUPLICATE_KEY = re.compile(r"for key '(?:[^']*\.)?(?P<index>[^'.]*)'$")
"""The index its message names: `Duplicate entry 'x' for key 'login'` (MySQL 8 writes
`'people.login'`)."""


def _refusing_index(error: sa_exc.IntegrityError) -> str | None:
    """The name of the unique index that refused a row, when the driver tells it."""
    if error.orig is None:
        return None
    # SQLAlchemy's asyncpg adapter raises its own error from asyncpg's, which names it.
    named = getattr(error.orig.__cause__, "constraint_name", None)
    if isinstance(named, str):
        return named
    arguments: tuple[Any, ...] = tuple(getattr(error.orig, "args", ()))
    if len(arguments) == 2 and arguments[0] == _DUPLICATE_ENTRY:
        matched = _DUPLICATE_KEY.search(str(arguments[1]))
        return matched["index"] if matched else None
    return None


def _display(mapped: Mapped) -> sa.ColumnElement[Any]:
    """The column shown as `display` where other records refer to one of `mapped`."""
    if mapped.spec.display is None:
        return sa.null()
    return mapped.table.c[mapped.spec.display]


def _key(mapped: Mapped, id: str) -> Any:
    key = key_from_id(mapped.spec.kind, mapped.key, id)
    if key is None:
        raise NotFound(f"no {mapped.spec.kind.value} record has this id")
    return key


def _member_keys(users: Mapped, ids: Iterable[str]) -> tuple[set[Any], list[str]]:
    """The keys member ids stand for, and the ids that cannot be keys at all."""
    keys: set[Any] = set()
    unshaped: list[str] = []
    for id in ids:
        key = key_from_id(Kind.USERS, users.key, id)
        if key is None:
            unshaped.append(id)
        else:
            keys.add(key)
    return keys, unshaped


def _require(mapped: Mapped, row: Mapping[str, Any]) -> None:
    """A mapped NOT NULL column without a default must get a value on create."""
    for described in mapped.spec.fields:
        column = mapped.table.c[described.name]
        required = not column.nullable and column.server_default is None
        if required and row.get(described.name) is None:
            raise InvalidValue("a value is required", field=described.name)


def _stamps(mapped: Mapped, *, created: bool) -> dict[str, Any]:
    """The created / modified / version columns a write sets."""
    spec, table = mapped.spec, mapped.table
    moment = now()
    stamps: dict[str, Any] = {}
    if spec.created is not None and created:
        stamps[spec.created] = to_column(table.c[spec.created], moment, field=spec.created)
    if spec.modified is not None:
        stamps[spec.modified] = to_column(table.c[spec.modified], moment, field=spec.modified)
    if spec.version is not None:
        version = table.c[spec.version]
        stamps[spec.version] = 1 if created else sa.func.coalesce(version, 0) + 1
    return stamps


def _record(mapped: Mapped, row: Row) -> Record:
    spec = mapped.spec
    values: dict[str, Any] = {}
    for described in spec.fields:
        value = row[described.name]
        if value is not None and described.reference is not None:
            values[described.name] = id_from_key(described.reference, value)
        elif value is not None:
            value = from_column(value, mapped.table.c[described.name])
            if value is not None:  # a NaN read as no value
                values[described.name] = value
    return Record(
        id=id_from_key(spec.kind, row[spec.key]),
        values=values,
        version=_version(mapped, row),
        created=from_column(row[spec.created]) if spec.created is not None else None,
        modified=from_column(row[spec.modified]) if spec.modified is not None else None,
    )


def _version(mapped: Mapped, row: Row) -> str:
    """The version column, or a short hash of the whole row when there is none."""
    if mapped.spec.version is not None:
        return str(row[mapped.spec.version] or 0)
    stored = tuple(row[column.key] for column in mapped.table.c)  # not a query's extras
    digest = hashlib.sha256(repr(stored).encode())
    return digest.hexdigest()[:16]


def _chunks(keys: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for key in keys:
        batch.append(key)
        if len(batch) == _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch
