"""Create, read, update, delete; versions and If-Match; uniqueness; references; values."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from backends import create_database, create_default_tables, drop_database
from recording_journal import RecordingJournal, assert_deletion_told
from sql_specs import GROUPS, SCHEMA, USERS
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.base import (
    Change,
    Compare,
    Conflict,
    EventLost,
    InvalidValue,
    Kind,
    MemberChanges,
    NotFound,
    Op,
    PreconditionFailed,
    Query,
)
from connectors.sql import SqlConnector, SqlSettings
from connectors.sql.caseless import on_sqlite

DRIVER_TEXT = re.compile(
    r"select|insert|update|constraint|duplicate|null|sqlite|asyncpg|pymysql|\(\d+", re.I
)


async def test_create_returns_the_stored_record(connector: SqlConnector) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    record = await connector.create(
        Kind.USERS, {"user_name": "alice", "given_name": "Alice", "title": None}
    )
    assert record.values == {"user_name": "alice", "given_name": "Alice"}
    assert record.version == "1"
    assert record.created is not None
    assert record.created.tzinfo is UTC
    assert before <= record.created <= datetime.now(UTC) + timedelta(seconds=1)
    assert record.modified == record.created
    assert record.members is None
    assert await connector.get(Kind.USERS, record.id) == record


@pytest.mark.parametrize(
    "id", ["12345", "abc", "01", "1.0", "", "9" * 30, "2147483648", "1099511627776"]
)
async def test_get_unknown_or_malformed_id_is_not_found(connector: SqlConnector, id: str) -> None:
    """Ids beyond the key column's width (INTEGER: 32 bits on PostgreSQL and MariaDB)
    name no record either: not found, never a value refused (400)."""
    await connector.create(Kind.USERS, {"user_name": "alice"})
    with pytest.raises(NotFound):
        await connector.get(Kind.USERS, id)
    with pytest.raises(NotFound):
        await connector.update(Kind.USERS, id, {"title": "x"})
    with pytest.raises(NotFound):
        await connector.delete(Kind.USERS, id)
    found = await connector.search(Kind.USERS, Query(where=Compare("id", Op.EQ, id)))
    assert found.records == []


async def test_update_writes_changes_and_bumps_version(connector: SqlConnector) -> None:
    created = await connector.create(Kind.USERS, {"user_name": "alice", "title": "Engineer"})
    updated = await connector.update(Kind.USERS, created.id, {"title": None, "email": "a@x.org"})
    assert updated.values == {"user_name": "alice", "email": "a@x.org"}
    assert updated.version == "2"
    assert updated.created == created.created
    assert updated.modified is not None
    assert created.modified is not None
    assert updated.modified >= created.modified
    again = await connector.update(Kind.USERS, created.id, {"given_name": "Al"})
    assert again.version == "3"


async def test_update_without_changes_keeps_the_version(connector: SqlConnector) -> None:
    created = await connector.create(Kind.USERS, {"user_name": "alice"})
    same = await connector.update(Kind.USERS, created.id, {})
    assert same == created


async def test_if_version_guards_update_and_delete(connector: SqlConnector) -> None:
    created = await connector.create(Kind.USERS, {"user_name": "alice"})
    with pytest.raises(PreconditionFailed):
        await connector.update(Kind.USERS, created.id, {"title": "x"}, if_version="7")
    updated = await connector.update(Kind.USERS, created.id, {"title": "x"}, if_version="1")
    assert updated.values["title"] == "x"
    with pytest.raises(PreconditionFailed):
        await connector.delete(Kind.USERS, created.id, if_version="1")
    await connector.delete(Kind.USERS, created.id, if_version="2")
    with pytest.raises(NotFound):
        await connector.get(Kind.USERS, created.id)


async def test_update_and_delete_of_a_missing_record(connector: SqlConnector) -> None:
    with pytest.raises(NotFound):
        await connector.update(Kind.USERS, "42", {"title": "x"})
    with pytest.raises(NotFound):
        await connector.delete(Kind.USERS, "42")
    with pytest.raises(NotFound):
        await connector.delete(Kind.GROUPS, "not-a-number")


async def test_unique_fields_conflict_ignoring_case(connector: SqlConnector) -> None:
    alice = await connector.create(Kind.USERS, {"user_name": "Alice"})
    bob = await connector.create(Kind.USERS, {"user_name": "bob"})
    with pytest.raises(Conflict) as raised:
        await connector.create(Kind.USERS, {"user_name": "ALICE"})
    assert raised.value.field == "user_name"
    with pytest.raises(Conflict) as raised:
        await connector.update(Kind.USERS, bob.id, {"user_name": "alice"})
    assert raised.value.field == "user_name"
    renamed = await connector.update(Kind.USERS, alice.id, {"user_name": "ALICE"})
    assert renamed.values["user_name"] == "ALICE"


async def test_case_is_ignored_in_every_script(connector: SqlConnector) -> None:
    """SQLite's own lower() folds ASCII only: JOSÉ and josé are still one user name."""
    jose = await connector.create(Kind.USERS, {"user_name": "JOSÉ", "title": "Ärztin"})
    with pytest.raises(Conflict):
        await connector.create(Kind.USERS, {"user_name": "josé"})
    found = await connector.search(Kind.USERS, Query(where=Compare("user_name", Op.EQ, "josé")))
    assert [record.id for record in found.records] == [jose.id]
    titled = Compare("title", Op.SW, "ärz")
    assert [r.id for r in (await connector.search(Kind.USERS, Query(where=titled))).records] == [
        jose.id
    ]


async def test_caseless_uniqueness_without_an_index_on_lower(tables: str) -> None:
    """The embedded tables let PostgreSQL enforce it with a unique index on
    lower(user_name); a table without one gets the connector's own check."""
    engine = on_sqlite(create_async_engine(tables))
    if engine.dialect.name != "mysql":  # MariaDB's tables have no such index
        async with engine.begin() as connection:
            await connection.execute(sa.text("DROP INDEX users_user_name_lower"))
    await engine.dispose()
    unindexed = SqlConnector(SqlSettings(type="sql", url=tables), SCHEMA)
    await unindexed.open()
    try:
        alice = await unindexed.create(Kind.USERS, {"user_name": "Alice"})
        with pytest.raises(Conflict) as raised:
            await unindexed.create(Kind.USERS, {"user_name": "ALICE"})
        assert raised.value.field == "user_name"
        renamed = await unindexed.update(Kind.USERS, alice.id, {"user_name": "ALICE"})
        assert renamed.values["user_name"] == "ALICE"
    finally:
        await unindexed.close()


async def test_database_unique_constraint_is_a_conflict(tables: str) -> None:
    """Without the connector's own check, the table's UNIQUE constraint still answers 409."""
    schema = dataclasses.replace(SCHEMA, users=dataclasses.replace(USERS, unique=()))
    unchecked = SqlConnector(SqlSettings(type="sql", url=tables), schema)
    await unchecked.open()
    try:
        await unchecked.create(Kind.USERS, {"user_name": "alice"})
        with pytest.raises(Conflict) as raised:
            await unchecked.create(Kind.USERS, {"user_name": "alice"})
    finally:
        await unchecked.close()
    assert raised.value.message == "a unique value is already taken"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"user_name": "x" * 256}, "user_name"),
        ({"user_name": "alice", "status": "AB"}, "status"),
        ({"user_name": None}, "user_name"),
        ({"given_name": "Alice"}, "user_name"),
        ({"user_name": True}, "user_name"),
        ({"user_name": "alice", "manager_id": "999"}, "manager_id"),
        ({"user_name": "alice", "manager_id": "not-an-id"}, "manager_id"),
    ],
)
async def test_values_that_do_not_fit(
    connector: SqlConnector, values: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidValue) as raised:
        await connector.create(Kind.USERS, values)
    assert raised.value.field == field
    assert not DRIVER_TEXT.search(raised.value.message)


async def test_required_field_cannot_be_cleared(connector: SqlConnector) -> None:
    alice = await connector.create(Kind.USERS, {"user_name": "alice"})
    with pytest.raises(InvalidValue) as raised:
        await connector.update(Kind.USERS, alice.id, {"user_name": None})
    assert raised.value.field == "user_name"


async def test_an_unmapped_field_is_a_programming_error(connector: SqlConnector) -> None:
    with pytest.raises(ValueError, match="not a mapped field"):
        await connector.create(Kind.USERS, {"user_name": "alice", "locality": "Paris"})


async def test_manager_reference_round_trip_and_delete(connector: SqlConnector) -> None:
    boss = await connector.create(Kind.USERS, {"user_name": "boss"})
    worker = await connector.create(Kind.USERS, {"user_name": "worker", "manager_id": boss.id})
    assert worker.values["manager_id"] == boss.id
    with pytest.raises(InvalidValue) as raised:
        await connector.update(Kind.USERS, worker.id, {"manager_id": "424242"})
    assert raised.value.field == "manager_id"
    await connector.delete(Kind.USERS, boss.id)
    orphan = await connector.get(Kind.USERS, worker.id)
    assert "manager_id" not in orphan.values
    assert orphan.version == "2"  # the manager's removal changed the resource


async def test_a_user_may_manage_itself_and_still_be_deleted(connector: SqlConnector) -> None:
    alice = await connector.create(Kind.USERS, {"user_name": "alice"})
    await connector.update(Kind.USERS, alice.id, {"manager_id": alice.id})
    await connector.delete(Kind.USERS, alice.id)
    with pytest.raises(NotFound):
        await connector.get(Kind.USERS, alice.id)


async def test_a_deletion_journals_the_records_it_changes(tables: str) -> None:
    """A deleted manager empties its reports' manager, a deleted user leaves its groups:
    each is a change of its own, so webhook receivers learn of them too."""
    journal = RecordingJournal()
    connector = SqlConnector(SqlSettings(type="sql", url=tables), SCHEMA, journal)
    await connector.open()
    try:
        boss = await connector.create(Kind.USERS, {"user_name": "boss"})
        worker = await connector.create(Kind.USERS, {"user_name": "worker", "manager_id": boss.id})
        await connector.update(Kind.USERS, boss.id, {"manager_id": boss.id})  # itself, too
        group = await connector.create(Kind.GROUPS, {"display_name": "g"}, members=[boss.id])
        journal.changes.clear()
        await connector.delete(Kind.USERS, boss.id)
        assert_deletion_told(
            journal.changes,
            deleted=boss.id,
            report=worker.id,
            group=group.id,
            manager="manager_id",
        )
    finally:
        await connector.close()


async def test_groups_can_be_created_and_renamed(connector: SqlConnector) -> None:
    group = await connector.create(Kind.GROUPS, {"display_name": "Staff"})
    assert group.members == []
    renamed = await connector.update(Kind.GROUPS, group.id, {"display_name": "Crew"})
    assert renamed.values == {"display_name": "Crew"}
    assert renamed.version == "2"
    await connector.delete(Kind.GROUPS, group.id)
    with pytest.raises(NotFound):
        await connector.get(Kind.GROUPS, group.id)


async def test_a_user_is_created_without_a_transaction_of_its_own_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One INSERT ... RETURNING is atomic by itself: no BEGIN and COMMIT round trips. A
    group (its insert, its members, its read) still gets its transaction, and a conflict
    still leaves nothing written."""
    from asyncpg.transaction import Transaction

    url = await create_database("postgresql", tmp_path)
    try:
        await create_default_tables(url)
        connector = SqlConnector(SqlSettings(type="sql", url=url), SCHEMA)
        await connector.open()
        try:
            begun: list[Transaction] = []  # the transactions asyncpg starts (BEGIN)
            start = Transaction.start

            async def counted(self: Transaction) -> None:
                begun.append(self)
                await start(self)

            monkeypatch.setattr(Transaction, "start", counted)
            alice = await connector.create(Kind.USERS, {"user_name": "alice"})
            assert begun == []
            with pytest.raises(Conflict):
                await connector.create(Kind.USERS, {"user_name": "ALICE"})
            await connector.create(Kind.GROUPS, {"display_name": "staff"}, members=[alice.id])
            assert len(begun) == 1
            found = await connector.search(Kind.USERS, Query())
            assert [record.id for record in found.records] == [alice.id]
        finally:
            await connector.close()
    finally:
        await drop_database("postgresql", url)


async def test_an_id_is_never_given_again(connector: SqlConnector) -> None:
    """RFC 7643 §3.1: a deleted resource's id names no later one (SQLite reused the last
    row's id without AUTOINCREMENT)."""
    for kind, values in (
        (Kind.USERS, {"user_name": "alice"}),
        (Kind.GROUPS, {"display_name": "g"}),
    ):
        first = await connector.create(kind, values)
        await connector.delete(kind, first.id)
        second = await connector.create(kind, values)
        assert second.id != first.id


class JournalOfItsOwn(RecordingJournal):
    """A journal with a database of its own: told after the commit, it can see the write."""

    in_transaction = False

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.visible: list[bool] = []
        self.transactions: list[object] = []

    async def record(self, changes: list[Change], transaction: object) -> None:
        self.transactions.append(transaction)
        engine = on_sqlite(create_async_engine(self.url))
        try:
            async with engine.connect() as connection:
                for change in changes:  # users only, in the test below
                    found = await connection.execute(
                        sa.text("SELECT count(*) FROM users WHERE id = :key"),
                        {"key": int(change.id)},
                    )
                    self.visible.append(found.scalar() == (0 if change.after is None else 1))
        finally:
            await engine.dispose()
        await super().record(changes, transaction)


async def test_a_journal_with_its_own_database_is_told_after_the_commit(tables: str) -> None:
    journal = JournalOfItsOwn(tables)
    connector = SqlConnector(SqlSettings(type="sql", url=tables), SCHEMA, journal)
    await connector.open()
    try:
        alice = await connector.create(Kind.USERS, {"user_name": "alice"})
        await connector.update(Kind.USERS, alice.id, {"title": "Lead"})
        with pytest.raises(Conflict):
            await connector.create(Kind.USERS, {"user_name": "ALICE"})
        await connector.delete(Kind.USERS, alice.id)
    finally:
        await connector.close()
    assert [change.kind for change in journal.changes] == [Kind.USERS] * 3  # not the conflict
    assert journal.visible == [True, True, True]  # each write committed when told
    assert journal.transactions == [None, None, None]


class DeadlockedOnce(RecordingJournal):
    """A journal of its own whose first write is a deadlock's victim, as its database
    (MariaDB here) would refuse it, untranslated."""

    in_transaction = False

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def record(self, changes: list[Change], transaction: object) -> None:
        self.calls += 1
        if self.calls == 1:
            deadlock = Exception(1213, "Deadlock found when trying to get lock")
            raise sa.exc.OperationalError("INSERT INTO scim_bridge_events", {}, deadlock)
        await super().record(changes, transaction)


async def test_a_write_that_committed_is_not_redone_when_its_event_deadlocks(
    tables: str,
) -> None:
    """The change has committed when a journal of its own is told: a deadlock there is
    never a reason to make the write again (a second group, a 409 on a user), here nor by
    the client: EventLost (500 "do not send it again"), not Unavailable (503, retry)."""
    journal = DeadlockedOnce()
    connector = SqlConnector(SqlSettings(type="sql", url=tables), SCHEMA, journal)
    await connector.open()
    try:
        with pytest.raises(EventLost):
            await connector.create(Kind.GROUPS, {"display_name": "once"})
        page = await connector.search(Kind.GROUPS, Query())
    finally:
        await connector.close()
    assert [record.values["display_name"] for record in page.records] == ["once"]
    assert journal.calls == 1


async def test_a_member_write_that_changes_nothing_on_a_table_without_stamps(
    tables: str,
) -> None:
    """Groups mapped without created, modified and version columns: adding a member
    already there writes nothing (there is no version to keep), and is no error."""
    groups = dataclasses.replace(GROUPS, created=None, modified=None, version=None)
    schema = dataclasses.replace(SCHEMA, groups=groups)
    connector = SqlConnector(SqlSettings(type="sql", url=tables), schema)
    await connector.open()
    try:
        alice = await connector.create(Kind.USERS, {"user_name": "alice"})
        group = await connector.create(Kind.GROUPS, {"display_name": "g"}, members=[alice.id])
        again = MemberChanges(added=frozenset({alice.id}))
        after = await connector.update(Kind.GROUPS, group.id, {}, members=again)
    finally:
        await connector.close()
    assert after.version == group.version


# Not on SQLite: its writers take turns, so nothing can commit in between.
@pytest.mark.parametrize("sql_url", ["postgresql", "mariadb"], indirect=True)
async def test_a_deletion_made_again_when_the_user_joined_a_group_meanwhile(
    tables: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deletion locks the user's groups, then the user. A group the user joined in
    between (committed by another connection) would be locked after the user, against
    the order member changes take: the deletion is made again, and then tells of both
    groups' loss and leaves no membership behind."""
    journal = RecordingJournal()
    connector = SqlConnector(SqlSettings(type="sql", url=tables), SCHEMA, journal)
    other = SqlConnector(SqlSettings(type="sql", url=tables), SCHEMA)
    await connector.open()
    await other.open()
    try:
        user = await connector.create(Kind.USERS, {"user_name": "leaver"})
        first = await connector.create(Kind.GROUPS, {"display_name": "first"}, members=[user.id])
        second = await connector.create(Kind.GROUPS, {"display_name": "second"})
        journal.changes.clear()
        lock_groups = connector._lock_groups_of
        calls: list[list[object]] = []

        async def joined_in_between(connection: object, user_key: object) -> list[object]:
            locked = await lock_groups(connection, user_key)  # type: ignore[arg-type]
            calls.append(locked)
            if len(calls) == 1:
                joining = MemberChanges(added=frozenset({user.id}))
                await other.update(Kind.GROUPS, second.id, {}, members=joining)
            return locked

        monkeypatch.setattr(connector, "_lock_groups_of", joined_in_between)
        await connector.delete(Kind.USERS, user.id)
        assert [len(locked) for locked in calls] == [1, 2]  # made again, both locked
        told = {(change.kind, change.id): change for change in journal.changes}
        assert told[(Kind.USERS, user.id)].after is None
        assert told[(Kind.GROUPS, first.id)].members_removed == {user.id}
        assert told[(Kind.GROUPS, second.id)].members_removed == {user.id}
        for group in (first, second):
            fresh = await connector.get(Kind.GROUPS, group.id, with_members=True)
            assert fresh.members == []
    finally:
        await other.close()
        await connector.close()
