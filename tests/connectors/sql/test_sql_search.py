"""Searches: every condition type and operator, escaping, case, paging, totals, sorting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import (
    And,
    Compare,
    Condition,
    Constant,
    InvalidValue,
    Kind,
    Membership,
    Not,
    Op,
    Or,
    Present,
    Query,
    Sort,
)
from connectors.sql import SqlConnector

PEOPLE: list[dict[str, Any]] = [
    {"user_name": "alice", "given_name": "Alice", "title": "Engineer", "email": "alice@x.org"},
    {"user_name": "Bob", "given_name": "Bob", "title": "engineer", "status": "A"},
    {"user_name": "carol", "given_name": "Carol", "title": "", "status": "T"},
    {"user_name": "dave", "given_name": "dave", "email": "dave@y.org"},
    {"user_name": "Eve", "title": "Manager"},
]


@pytest.fixture
async def people(connector: SqlConnector) -> dict[str, str]:
    """user_name -> SCIM id of the PEOPLE, created in order (so ids ascend)."""
    ids = {}
    for person in PEOPLE:
        ids[person["user_name"]] = (await connector.create(Kind.USERS, person)).id
    return ids


async def names(connector: SqlConnector, where: Condition, kind: Kind = Kind.USERS) -> list[str]:
    page = await connector.search(kind, Query(where=where))
    field = "user_name" if kind is Kind.USERS else "display_name"
    assert page.total == len(page.records)
    return [record.values[field] for record in page.records]


# One database serves every case of a table below: creating one per case costs more than
# the cases themselves.
CONDITIONS: list[tuple[Condition, list[str]]] = [
    (Compare("title", Op.EQ, "ENGINEER"), ["alice", "Bob"]),
    (Compare("title", Op.EQ, "Engineer", case_exact=True), ["alice"]),
    (Compare("title", Op.NE, "engineer"), ["carol", "dave", "Eve"]),
    (Compare("title", Op.NE, "engineer", case_exact=True), ["alice", "carol", "dave", "Eve"]),
    (Compare("given_name", Op.CO, "A"), ["alice", "carol", "dave"]),
    (Compare("given_name", Op.CO, "a", case_exact=True), ["carol", "dave"]),
    (Compare("given_name", Op.SW, "d"), ["dave"]),
    (Compare("given_name", Op.SW, "D", case_exact=True), []),
    (Compare("email", Op.EW, ".ORG"), ["alice", "dave"]),
    (Compare("email", Op.EW, ".ORG", case_exact=True), []),
    (Compare("user_name", Op.GT, "c"), ["carol", "dave", "Eve"]),
    (Compare("user_name", Op.GE, "CAROL"), ["carol", "dave", "Eve"]),
    (Compare("user_name", Op.LT, "c"), ["alice", "Bob"]),
    (Compare("user_name", Op.LE, "BOB"), ["alice", "Bob"]),
    (Compare("user_name", Op.GT, "a", case_exact=True), ["alice", "carol", "dave"]),
    (Compare("user_name", Op.LT, "a", case_exact=True), ["Bob", "Eve"]),
    (Compare("title", Op.EQ, None), ["dave"]),
    (Compare("title", Op.NE, None), ["alice", "Bob", "carol", "Eve"]),
    (Present("title"), ["alice", "Bob", "Eve"]),
    (Present("status"), ["Bob", "carol"]),
    (Present("id"), ["alice", "Bob", "carol", "dave", "Eve"]),
    (
        And((Compare("title", Op.CO, "eng"), Compare("status", Op.EQ, "A"))),
        ["Bob"],
    ),
    (
        Or((Compare("user_name", Op.EQ, "eve"), Compare("status", Op.EQ, "T"))),
        ["carol", "Eve"],
    ),
    (Not(Compare("title", Op.EQ, "engineer")), ["carol", "dave", "Eve"]),
    (Not(Present("email")), ["Bob", "carol", "Eve"]),
    (Not(Not(Compare("status", Op.EQ, "t"))), ["carol"]),
    (And(()), ["alice", "Bob", "carol", "dave", "Eve"]),
    (Or(()), []),
    (Constant(True), ["alice", "Bob", "carol", "dave", "Eve"]),
    (Constant(False), []),
    (And((Constant(True), Not(Constant(False)), Compare("user_name", Op.EQ, "Bob"))), ["Bob"]),
    (Compare("version", Op.EQ, 1), ["alice", "Bob", "carol", "dave", "Eve"]),
    (Compare("version", Op.GT, "1"), []),
]


async def test_conditions(connector: SqlConnector, people: dict[str, str]) -> None:
    found = [(condition, await names(connector, condition)) for condition, _ in CONDITIONS]
    assert found == CONDITIONS


async def test_compare_on_the_key(connector: SqlConnector, people: dict[str, str]) -> None:
    bob = people["Bob"]
    assert await names(connector, Compare("id", Op.EQ, bob, case_exact=True)) == ["Bob"]
    assert await names(connector, Compare("id", Op.NE, bob)) == ["alice", "carol", "dave", "Eve"]
    assert await names(connector, Compare("id", Op.EQ, "not-an-id")) == []
    assert len(await names(connector, Compare("id", Op.NE, "not-an-id"))) == 5
    with pytest.raises(InvalidValue) as raised:
        await names(connector, Compare("id", Op.GT, bob))
    assert raised.value.field == "id"


async def test_compare_on_a_reference(connector: SqlConnector, people: dict[str, str]) -> None:
    alice = people["alice"]
    await connector.update(Kind.USERS, people["Bob"], {"manager_id": alice})
    assert await names(connector, Compare("manager_id", Op.EQ, alice)) == ["Bob"]
    assert await names(connector, Compare("manager_id", Op.NE, alice)) == [
        "alice",
        "carol",
        "dave",
        "Eve",
    ]
    assert await names(connector, Compare("manager_id", Op.EQ, "x")) == []
    assert await names(connector, Present("manager_id")) == ["Bob"]


async def test_compare_on_timestamps(connector: SqlConnector, people: dict[str, str]) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await names(connector, Compare("created_at", Op.GT, later)) == []
    assert len(await names(connector, Compare("modified_at", Op.LT, later))) == 5
    with pytest.raises(InvalidValue) as raised:
        await names(connector, Compare("created_at", Op.GT, "yesterday"))
    assert raised.value.field == "created_at"


@pytest.mark.parametrize(
    "condition",
    [Compare("version", Op.CO, 1), Compare("manager_id", Op.SW, "1"), Compare("title", Op.EQ, [])],
)
async def test_conditions_that_cannot_apply(
    connector: SqlConnector, people: dict[str, str], condition: Condition
) -> None:
    with pytest.raises(InvalidValue):
        await names(connector, condition)


async def test_an_unmapped_field_cannot_be_searched(connector: SqlConnector) -> None:
    with pytest.raises(ValueError, match="not a mapped field"):
        await connector.search(Kind.USERS, Query(where=Present("locality")))
    with pytest.raises(ValueError, match="not a mapped field"):
        await connector.search(Kind.USERS, Query(sort=Sort("locality")))


async def test_membership_conditions(connector: SqlConnector, people: dict[str, str]) -> None:
    staff = await connector.create(
        Kind.GROUPS, {"display_name": "Staff"}, members=[people["alice"], people["Bob"]]
    )
    await connector.create(Kind.GROUPS, {"display_name": "Empty"})
    everyone_but = ["carol", "dave", "Eve"]
    assert await names(connector, Membership(Op.EQ, staff.id)) == ["alice", "Bob"]
    assert await names(connector, Membership(Op.NE, staff.id)) == everyone_but
    assert await names(connector, Membership(None, None)) == ["alice", "Bob"]
    assert await names(connector, Not(Membership(None, None))) == everyone_but
    assert await names(connector, Membership(Op.EQ, "x")) == []
    assert len(await names(connector, Membership(Op.NE, "x"))) == 5
    groups = Kind.GROUPS
    assert await names(connector, Membership(Op.EQ, people["Bob"]), groups) == ["Staff"]
    assert await names(connector, Membership(Op.NE, people["Bob"]), groups) == ["Empty"]
    assert await names(connector, Membership(None, None), groups) == ["Staff"]
    assert await names(connector, Membership(Op.EQ, people["Eve"]), groups) == []


HOSTILE = ["100%", "a_b", "back\\slash", "it's", "x'; DROP TABLE users; --", 'say "hi"', "[*?]"]


@pytest.fixture
async def hostile(connector: SqlConnector) -> None:
    for value in [*HOSTILE, "100x", "axb", "backslash", "its"]:
        await connector.create(Kind.USERS, {"user_name": value, "title": value})


LITERALLY: list[tuple[Op, str, list[str]]] = [
    (Op.CO, "%", ["100%"]),
    (Op.EW, "%", ["100%"]),
    (Op.CO, "_", ["a_b"]),
    (Op.SW, "a_", ["a_b"]),
    (Op.CO, "\\", ["back\\slash"]),
    (Op.CO, "'", ["it's", "x'; DROP TABLE users; --"]),
    (Op.EQ, "x'; DROP TABLE users; --", ["x'; DROP TABLE users; --"]),
    (Op.SW, "x'; DROP", ["x'; DROP TABLE users; --"]),
    (Op.CO, '"', ['say "hi"']),
    (Op.CO, "*", ["[*?]"]),
    (Op.CO, "?", ["[*?]"]),
    (Op.SW, "[", ["[*?]"]),
    (Op.EQ, "%", []),
]


@pytest.mark.usefixtures("hostile")
@pytest.mark.parametrize("case_exact", [False, True])
async def test_hostile_values_match_literally(connector: SqlConnector, case_exact: bool) -> None:
    found = [
        (op, value, await names(connector, Compare("title", op, value, case_exact=case_exact)))
        for op, value, _ in LITERALLY
    ]
    assert found == LITERALLY
    assert len(await names(connector, Constant(True))) == len(HOSTILE) + 4  # table intact


async def test_paging_and_totals(connector: SqlConnector, people: dict[str, str]) -> None:
    by_name = Sort("user_name")
    page = await connector.search(Kind.USERS, Query(sort=by_name, offset=1, limit=2))
    assert [record.values["user_name"] for record in page.records] == ["Bob", "carol"]
    assert page.total == 5
    counted = await connector.search(Kind.USERS, Query(limit=0))
    assert counted.records == []
    assert counted.total == 5
    beyond = await connector.search(Kind.USERS, Query(offset=10, limit=5))
    assert beyond.records == []
    assert beyond.total == 5
    tail = await connector.search(Kind.USERS, Query(sort=by_name, offset=3))
    assert [record.values["user_name"] for record in tail.records] == ["dave", "Eve"]
    filtered = await connector.search(
        Kind.USERS, Query(where=Compare("title", Op.CO, "e"), limit=1)
    )
    assert len(filtered.records) == 1
    assert filtered.total == 3


def user_names(page: Any) -> list[str]:
    return [record.values["user_name"] for record in page.records]


async def test_the_next_page_continues_after_the_last_record_given(
    connector: SqlConnector, people: dict[str, str]
) -> None:
    first = await connector.search(Kind.USERS, Query(offset=0, limit=2))
    assert user_names(first) == ["alice", "Bob"]
    assert first.total == 5
    await connector.delete(Kind.USERS, people["alice"])
    # OFFSET 2 would now skip carol (every row moved up one): the page continues after Bob.
    second = await connector.search(Kind.USERS, Query(offset=2, limit=2))
    assert user_names(second) == ["carol", "dave"]
    assert second.total == 4
    # No page ended at index 1, nor did one of this filtered query: both use OFFSET.
    jump = await connector.search(Kind.USERS, Query(offset=1, limit=2))
    assert user_names(jump) == ["carol", "dave"]
    engineers = Compare("title", Op.NE, None)
    filtered = await connector.search(Kind.USERS, Query(where=engineers, offset=2, limit=2))
    assert user_names(filtered) == ["Eve"]
    assert filtered.total == 3


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (Sort("user_name"), ["alice", "Bob", "carol", "dave", "Eve"]),
        (Sort("user_name", descending=True), ["Eve", "dave", "carol", "Bob", "alice"]),
        (Sort("user_name", case_exact=True), ["Bob", "Eve", "alice", "carol", "dave"]),
        # Absent values last when ascending, first when descending (RFC 7644 §3.4.2.3);
        # ties broken by the key.
        (Sort("title"), ["carol", "alice", "Bob", "Eve", "dave"]),
        (Sort("title", descending=True), ["dave", "Eve", "alice", "Bob", "carol"]),
        (Sort("status"), ["Bob", "carol", "alice", "dave", "Eve"]),
        (Sort("id", descending=True), ["Eve", "dave", "carol", "Bob", "alice"]),
        (None, ["alice", "Bob", "carol", "dave", "Eve"]),
    ],
)
async def test_sorting(
    connector: SqlConnector, people: dict[str, str], sort: Sort | None, expected: list[str]
) -> None:
    page = await connector.search(Kind.USERS, Query(sort=sort))
    assert [record.values["user_name"] for record in page.records] == expected


@pytest.mark.parametrize(
    ("descending", "expected"),
    [
        (False, ["alice", "Bob", "Eve", "carol", "dave"]),
        (True, ["carol", "dave", "Eve", "alice", "Bob"]),
    ],
)
async def test_a_stand_in_for_no_value_sorts_as_none(
    connector: SqlConnector, people: dict[str, str], descending: bool, expected: list[str]
) -> None:
    # A rule's `empty` value is written for none; records holding it (carol's "") sort
    # with the records holding nothing (RFC 7644 §3.4.2.3): last ascending, first descending.
    sort = Sort("title", descending=descending, empty="")
    page = await connector.search(Kind.USERS, Query(sort=sort))
    titles = {record.values["user_name"]: record.values.get("title") for record in page.records}
    assert user_names(page) == expected, titles
