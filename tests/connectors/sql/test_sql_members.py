"""Group memberships: add, remove, replace, deletes, and O(1) work for one added member."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sql_specs import SCHEMA
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.base import InvalidValue, Kind, MemberChanges, MemberRef, Query
from connectors.sql import SqlConnector, SqlSettings
from connectors.sql.caseless import on_sqlite


async def users(connector: SqlConnector, *names: str) -> list[str]:
    return [
        (await connector.create(Kind.USERS, {"user_name": name, "display_name": name.title()})).id
        for name in names
    ]


async def member_ids(connector: SqlConnector, group: str) -> set[str]:
    record = await connector.get(Kind.GROUPS, group, with_members=True)
    assert record.members is not None
    return {member.id for member in record.members}


async def test_create_with_members_and_read_both_ways(connector: SqlConnector) -> None:
    alice, bob = await users(connector, "alice", "bob")
    group = await connector.create(Kind.GROUPS, {"display_name": "Staff"}, members=[alice, bob])
    assert group.members == [MemberRef(alice, "Alice"), MemberRef(bob, "Bob")]
    user = await connector.get(Kind.USERS, alice, with_groups=True)
    assert user.groups == [MemberRef(group.id, "Staff")]
    plain = await connector.get(Kind.GROUPS, group.id)
    assert plain.members is None


@pytest.mark.parametrize("unknown", ["999", "not-a-key"])
async def test_an_unknown_member_creates_nothing(connector: SqlConnector, unknown: str) -> None:
    [alice] = await users(connector, "alice")
    with pytest.raises(InvalidValue) as raised:
        await connector.create(Kind.GROUPS, {"display_name": "Staff"}, members=[alice, unknown])
    assert raised.value.field == "members"
    assert (await connector.search(Kind.GROUPS, Query())).total == 0


async def test_add_remove_and_replace(connector: SqlConnector) -> None:
    alice, bob, carol = await users(connector, "alice", "bob", "carol")
    group = await connector.create(Kind.GROUPS, {"display_name": "Staff"}, members=[alice])

    added = await connector.update(
        Kind.GROUPS, group.id, {}, members=MemberChanges(added=frozenset({alice, bob}))
    )
    assert added.version == "2"  # member changes are writes too
    assert await member_ids(connector, group.id) == {alice, bob}

    await connector.update(
        Kind.GROUPS,
        group.id,
        {},
        members=MemberChanges(removed=frozenset({alice, "not-a-key"}), added=frozenset({carol})),
    )
    assert await member_ids(connector, group.id) == {bob, carol}

    replaced = await connector.update(
        Kind.GROUPS,
        group.id,
        {"display_name": "Crew"},
        members=MemberChanges(replace=frozenset({alice, carol})),
        with_members=True,
    )
    assert replaced.values["display_name"] == "Crew"
    assert replaced.members is not None
    assert {member.id for member in replaced.members} == {alice, carol}

    emptied = await connector.update(
        Kind.GROUPS, group.id, {}, members=MemberChanges(replace=frozenset()), with_members=True
    )
    assert emptied.members == []


async def test_adding_an_unknown_member_changes_nothing(connector: SqlConnector) -> None:
    alice, bob = await users(connector, "alice", "bob")
    group = await connector.create(Kind.GROUPS, {"display_name": "Staff"}, members=[alice])
    for changes in (
        MemberChanges(added=frozenset({bob, "4242"})),
        MemberChanges(replace=frozenset({bob, "x"})),
    ):
        with pytest.raises(InvalidValue) as raised:
            await connector.update(Kind.GROUPS, group.id, {"display_name": "X"}, members=changes)
        assert raised.value.field == "members"
    unchanged = await connector.get(Kind.GROUPS, group.id, with_members=True)
    assert unchanged.values["display_name"] == "Staff"
    assert unchanged.version == "1"
    assert unchanged.members == [MemberRef(alice, "Alice")]


async def test_users_have_no_members(connector: SqlConnector) -> None:
    [alice] = await users(connector, "alice")
    with pytest.raises(InvalidValue):
        await connector.create(Kind.USERS, {"user_name": "bob"}, members=[alice])


async def test_deleting_a_user_leaves_its_groups(connector: SqlConnector) -> None:
    alice, bob = await users(connector, "alice", "bob")
    group = await connector.create(Kind.GROUPS, {"display_name": "Staff"}, members=[alice, bob])
    await connector.delete(Kind.USERS, alice)
    after = await connector.get(Kind.GROUPS, group.id, with_members=True)
    assert after.members == [MemberRef(bob, "Bob")]
    assert after.version == "2"


async def test_deleting_a_group_removes_its_memberships(connector: SqlConnector) -> None:
    [alice] = await users(connector, "alice")
    staff = await connector.create(Kind.GROUPS, {"display_name": "Staff"}, members=[alice])
    crew = await connector.create(Kind.GROUPS, {"display_name": "Crew"}, members=[alice])
    await connector.delete(Kind.GROUPS, staff.id)
    user = await connector.get(Kind.USERS, alice, with_groups=True)
    assert user.groups == [MemberRef(crew.id, "Crew")]


class Statements:
    """Every statement any engine sends while active, with its parameters."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.seen.append((statement, parameters))


@pytest.fixture
def statements() -> Iterator[Statements]:
    recorder = Statements()
    sa.event.listen(sa.Engine, "before_cursor_execute", recorder)
    yield recorder
    sa.event.remove(sa.Engine, "before_cursor_execute", recorder)


def parameter_count(parameters: Any) -> int:
    if isinstance(parameters, dict):
        return len(parameters)
    if isinstance(parameters, list | tuple):
        return sum(
            parameter_count(each) if isinstance(each, dict | list | tuple) else 1
            for each in parameters
        )
    return 0


async def test_adding_one_member_to_a_large_group_is_constant_work(
    connector: SqlConnector, tables: str, statements: Statements
) -> None:
    size = 2000
    engine = on_sqlite(create_async_engine(tables))
    async with engine.begin() as connection:
        users_table = sa.table("users", sa.column("user_name"))
        await connection.execute(
            sa.insert(users_table), [{"user_name": f"user{n}"} for n in range(size + 1)]
        )
    await engine.dispose()
    page = await connector.search(Kind.USERS, Query(limit=size + 1))
    *everyone, newcomer = [record.id for record in page.records]
    group = await connector.create(Kind.GROUPS, {"display_name": "All"}, members=everyone)
    assert group.members is not None
    assert len(group.members) == size

    statements.seen.clear()
    updated = await connector.update(
        Kind.GROUPS, group.id, {}, members=MemberChanges(added=frozenset({newcomer}))
    )

    assert updated.version == "2"
    assert len(statements.seen) <= 8, statements.seen
    for statement, parameters in statements.seen:
        assert parameter_count(parameters) <= 4, statement
        if "memberships" in statement and not statement.lstrip().upper().startswith("INSERT"):
            # Any read or write of the membership table is narrowed to the new member.
            assert "user_id" in statement.split("WHERE", 1)[-1], statement
    assert len(await member_ids(connector, group.id)) == size + 1


async def test_a_page_of_groups_reads_members_in_one_query(
    connector: SqlConnector, statements: Statements
) -> None:
    alice, bob = await users(connector, "alice", "bob")
    for n in range(5):
        await connector.create(Kind.GROUPS, {"display_name": f"g{n}"}, members=[alice, bob])
    statements.seen.clear()
    page = await connector.search(Kind.GROUPS, Query(with_members=True))
    assert [len(record.members or []) for record in page.records] == [2] * 5
    selects = [s for s, _ in statements.seen if "memberships" in s]
    assert len(selects) == 1
    statements.seen.clear()
    page = await connector.search(Kind.USERS, Query(with_groups=True))
    assert [len(record.groups or []) for record in page.records] == [5, 5]
    assert len([s for s, _ in statements.seen if "memberships" in s]) == 1


async def test_concurrent_additions_all_land_in_fewer_writes(
    connector: SqlConnector, tables: str
) -> None:
    """Additions to one group from two connectors (two workers) at once: each connector
    writes its first alone and the three that queued meanwhile together (group commit),
    and the two connectors' transactions queue on the group's row lock (SQLite: on BEGIN
    IMMEDIATE) instead of failing."""
    other = SqlConnector(SqlSettings(type="sql", url=tables), SCHEMA)
    await other.open()
    try:
        ids = await users(connector, *(f"user{n}" for n in range(8)))
        group = await connector.create(Kind.GROUPS, {"display_name": "Busy"})
        answers = await asyncio.gather(
            *(
                writer.update(
                    Kind.GROUPS, group.id, {}, members=MemberChanges(added=frozenset({id}))
                )
                for writer, id in zip(itertools.cycle([connector, other]), ids, strict=False)
            )
        )
        assert await member_ids(connector, group.id) == set(ids)
        # Created at version 1, then two writes by each connector, not eight.
        assert (await connector.get(Kind.GROUPS, group.id)).version == "5"
        assert {answer.version for answer in answers} <= {"2", "3", "4", "5"}
    finally:
        await other.close()


async def test_a_member_naming_no_user_fails_alone_among_concurrent_additions(
    connector: SqlConnector,
) -> None:
    """Written together, the additions are refused as one (the transaction rolls back);
    each is then written alone, so that only the one naming no user is refused."""
    ids = await users(connector, *(f"user{n}" for n in range(5)))
    group = await connector.create(Kind.GROUPS, {"display_name": "Busy"})
    sent = [*ids[:3], "999999", *ids[3:]]
    answers = await asyncio.gather(
        *(
            connector.update(
                Kind.GROUPS, group.id, {}, members=MemberChanges(added=frozenset({id}))
            )
            for id in sent
        ),
        return_exceptions=True,
    )
    refused = [
        id for id, answer in zip(sent, answers, strict=True) if isinstance(answer, Exception)
    ]
    assert refused == ["999999"]
    assert isinstance(answers[3], InvalidValue)
    assert await member_ids(connector, group.id) == set(ids)


async def test_a_new_display_name_gives_those_who_show_it_new_versions(
    connector: SqlConnector,
) -> None:
    # A group's members show its name, a user's groups and reports show the user's: each
    # of those representations changed, so must each version (RFC 7644 §3.14).
    boss, alice, bob = await users(connector, "boss", "alice", "bob")
    await connector.update(Kind.USERS, alice, {"manager_id": boss})
    staff = await connector.create(Kind.GROUPS, {"display_name": "Staff"}, members=[boss, alice])

    async def versions() -> dict[str, str]:
        return {
            "boss": (await connector.get(Kind.USERS, boss)).version,
            "alice": (await connector.get(Kind.USERS, alice)).version,
            "bob": (await connector.get(Kind.USERS, bob)).version,
            "staff": (await connector.get(Kind.GROUPS, staff.id)).version,
        }

    before = await versions()
    await connector.update(Kind.GROUPS, staff.id, {"display_name": "Everyone"})
    after_group = await versions()
    changed = {name for name in before if before[name] != after_group[name]}
    assert changed == {"staff", "boss", "alice"}

    await connector.update(Kind.USERS, boss, {"display_name": "The Boss"})
    after_boss = await versions()
    changed = {name for name in before if after_group[name] != after_boss[name]}
    assert changed == {"boss", "alice", "staff"}  # alice shows her manager's name

    await connector.update(Kind.USERS, bob, {"external_id": "b-1"})
    assert {name for name, v in (await versions()).items() if v != after_boss[name]} == {"bob"}


async def test_renames_and_member_changes_in_parallel_never_deadlock(
    connector: SqlConnector,
) -> None:
    # A user's rename gives its groups new versions, a member change locks the group and
    # then its users: were the rename to lock its groups while holding its own row, the
    # two would deadlock (PostgreSQL 40P01, MariaDB 1213), answered 503.
    names = [f"user{n}" for n in range(6)]
    ids = await users(connector, *names)
    group = (await connector.create(Kind.GROUPS, {"display_name": "All"}, members=ids)).id

    async def rename_user(n: int) -> None:
        await connector.update(Kind.USERS, ids[n % 6], {"display_name": f"User {n}"})

    async def toggle_member(n: int) -> None:
        change = (
            {"removed": frozenset({ids[n % 6]})} if n % 2 else {"added": frozenset({ids[n % 6]})}
        )
        await connector.update(Kind.GROUPS, group, {}, members=MemberChanges(**change))

    async def rename_group(n: int) -> None:
        await connector.update(Kind.GROUPS, group, {"display_name": f"All {n}"})

    for _ in range(3):
        await asyncio.gather(
            *(work(n) for n in range(8) for work in (rename_user, toggle_member, rename_group))
        )


async def test_a_rename_that_committed_is_answered_even_if_renewing_versions_fails(
    connector: SqlConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    [alice] = await users(connector, "alice")

    async def unavailable(user: Any) -> None:
        raise OSError("the database went away after the commit")

    monkeypatch.setattr(connector, "_touch_those_showing", unavailable)
    renamed = await connector.update(Kind.USERS, alice, {"display_name": "Alice B."})
    assert renamed.values["display_name"] == "Alice B."
    assert (await connector.get(Kind.USERS, alice)).values["display_name"] == "Alice B."


async def test_one_user_added_to_many_groups_at_once_never_deadlocks(
    connector: SqlConnector, tables: str
) -> None:
    """Each addition gives the user a new version: its foreign key's check must not hold
    the user shared meanwhile, or two additions to two groups wait for each other
    (MariaDB picks a victim; redone five times, it is a 503). Two connectors, as two
    workers, so that the additions run in parallel transactions."""
    other = SqlConnector(SqlSettings(type="sql", url=tables), SCHEMA)
    await other.open()
    try:
        groups = [
            (await connector.create(Kind.GROUPS, {"display_name": f"Many{n}"})).id
            for n in range(16)
        ]
        for round in range(6):
            [user] = await users(connector, f"joiner{round}")
            await asyncio.gather(
                *(
                    writer.update(
                        Kind.GROUPS, group, {}, members=MemberChanges(added=frozenset({user}))
                    )
                    for writer, group in zip(
                        itertools.cycle([connector, other]), groups, strict=False
                    )
                )
            )
            joined = await connector.get(Kind.USERS, user, with_groups=True)
            assert {group.id for group in joined.groups or []} == set(groups)
    finally:
        await other.close()
