"""Numbers read from NUMERIC columns, filters on integers no column holds, sorting by a map."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sql_tables import connector_on

from connectors.base import (
    BackendSchema,
    Compare,
    Condition,
    Field,
    InvalidValue,
    Kind,
    Not,
    ObjectSpec,
    Op,
    Or,
    Query,
    Sort,
)
from connectors.sql import SqlConnector

PEOPLE = sa.MetaData()
sa.Table(
    "people",
    PEOPLE,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("login", sa.String(40), nullable=False),
    sa.Column("score", sa.Numeric(10, 2)),  # a decimal attribute
    sa.Column("rating", sa.Numeric),  # NUMERIC: DECIMAL(10,0) on MariaDB, any scale elsewhere
    sa.Column("level", sa.Integer),
    sa.Column("rank", sa.SmallInteger),
    sa.Column("serial", sa.BigInteger),
    sa.Column("status", sa.String(1)),
)
PERSON = ObjectSpec(
    kind=Kind.USERS,
    object="people",
    key="id",
    fields=tuple(
        Field(name) for name in ("login", "score", "rating", "level", "rank", "serial", "status")
    ),
    display="score",  # shown where a record refers to another: read as a number too
    unique=("login",),
)


@pytest.fixture
async def people(sql_url: str) -> AsyncIterator[SqlConnector]:
    async with connector_on(sql_url, PEOPLE, BackendSchema(users=PERSON)) as connector:
        yield connector


def _typed(values: dict[str, Any]) -> dict[str, tuple[type, Any]]:
    return {name: (type(value), value) for name, value in values.items() if name != "login"}


async def test_numeric_columns_read_as_json_numbers(people: SqlConnector) -> None:
    """A driver's Decimal never leaves the connector: orjson (bridge/http.py) refuses it.

    Whole numbers in a column without digits after the point read as int (an integer
    attribute in NUMERIC), anything in NUMERIC(10,2) as float (a decimal attribute).
    """
    created = await people.create(Kind.USERS, {"login": "alice", "score": 1.5, "rating": 7})
    whole = await people.create(Kind.USERS, {"login": "bob", "score": 2, "rating": "12"})
    expected = {
        created.id: {"score": (float, 1.5), "rating": (int, 7)},
        whole.id: {"score": (float, 2.0), "rating": (int, 12)},
    }
    assert {created.id: _typed(created.values), whole.id: _typed(whole.values)} == expected
    for id in (created.id, whole.id):
        assert _typed((await people.get(Kind.USERS, id)).values) == expected[id]
    searches = [
        Query(),  # in key order
        Query(sort=Sort("score", descending=True)),
        Query(where=Compare("score", Op.GT, 1)),
    ]
    for query in searches:
        page = await people.search(Kind.USERS, query)
        assert {record.id: _typed(record.values) for record in page.records} == expected
        orjson.dumps([record.values for record in page.records])
    updated = await people.update(Kind.USERS, whole.id, {"score": "3.25", "rating": 4})
    assert _typed(updated.values) == {"score": (float, 3.25), "rating": (int, 4)}


async def test_a_fraction_in_a_numeric_column_reads_as_a_float(
    people: SqlConnector, sql_url: str
) -> None:
    if sql_url.startswith("mysql"):  # MariaDB's NUMERIC is DECIMAL(10,0): it would round
        with pytest.raises(InvalidValue, match="not a whole number"):
            await people.create(Kind.USERS, {"login": "alice", "rating": "2.5"})
        return
    record = await people.create(Kind.USERS, {"login": "alice", "rating": "2.5"})
    assert (type(record.values["rating"]), record.values["rating"]) == (float, 2.5)


LEVELS = {"five": 5, "two": 2, "huge": 2**31 - 1, "tiny": -(2**31), "none": None}
INT32_OVER = 2**31
INT32_UNDER = -(2**31) - 1
INT64_OVER = 2**63

# An integer beyond what the column holds is a valid filter value (RFC 7643 §2.3.4): it
# matches nothing that must equal or exceed it, and every record with a value that must
# be below it. `ne` matches every record, as it does those without a value.
BEYOND: list[tuple[Condition, set[str]]] = [
    (Or((Compare("level", Op.EQ, 5), Compare("level", Op.EQ, INT32_OVER))), {"five"}),
    (Compare("level", Op.EQ, INT32_OVER), set()),
    (Compare("level", Op.GT, INT32_OVER), set()),
    (Compare("level", Op.GE, INT32_OVER), set()),
    (Compare("level", Op.LT, INT32_OVER), {"five", "two", "huge", "tiny"}),
    (Compare("level", Op.LE, INT32_OVER), {"five", "two", "huge", "tiny"}),
    (Compare("level", Op.NE, INT32_OVER), set(LEVELS)),
    (Not(Compare("level", Op.EQ, INT32_OVER)), set(LEVELS)),
    (Compare("level", Op.EQ, str(INT32_OVER)), set()),  # a whole number sent as text
    (Compare("level", Op.EQ, INT32_UNDER), set()),
    (Compare("level", Op.LT, INT32_UNDER), set()),
    (Compare("level", Op.LE, INT32_UNDER), set()),
    (Compare("level", Op.GT, INT32_UNDER), {"five", "two", "huge", "tiny"}),
    (Compare("level", Op.GE, INT32_UNDER), {"five", "two", "huge", "tiny"}),
    (Compare("level", Op.NE, INT32_UNDER), set(LEVELS)),
    (Compare("level", Op.EQ, 2**31 - 1), {"huge"}),  # the bounds are still compared
    (Compare("level", Op.LE, -(2**31)), {"tiny"}),
    # Past 64 bits, on SQLite too; SMALLINT and BIGINT keep to their own widths.
    (Compare("level", Op.LT, INT64_OVER), {"five", "two", "huge", "tiny"}),
    (Compare("level", Op.EQ, -INT64_OVER - 1), set()),
    (Compare("rank", Op.GE, 2**15), set()),
    (Compare("rank", Op.LT, 2**15), {"five", "two", "huge", "tiny"}),
    (Compare("serial", Op.EQ, 2**40), {"five"}),
    (Compare("serial", Op.EQ, INT64_OVER), set()),
    (Compare("serial", Op.GT, -INT64_OVER - 1), {"five", "two", "huge", "tiny"}),
]


async def test_integers_beyond_the_column_decide_the_comparison(people: SqlConnector) -> None:
    for login, level in LEVELS.items():
        values: dict[str, Any] = {"login": login, "level": level}
        if level is not None:
            values |= {"rank": 7, "serial": 2**40 if login == "five" else 1}
        await people.create(Kind.USERS, values)
    failures = []
    for condition, expected in BEYOND:
        page = await people.search(Kind.USERS, Query(where=condition))
        found = {record.values["login"] for record in page.records}
        if found != expected or page.total != len(expected):
            failures.append((condition, found, expected))
    assert failures == []


# sql-default's active: { true = "A", false = "T" }; false sorts first (RFC 7644 §3.4.2.3).
ACTIVE = (("A", 1), ("T", 0))


@pytest.mark.parametrize(
    ("descending", "expected"),
    [
        (False, ["carol", "frank", "Bob", "eve", "alice", "dave"]),
        (True, ["alice", "dave", "Bob", "eve", "carol", "frank"]),
    ],
)
async def test_a_mapped_field_sorts_by_the_rank_of_its_scim_value(
    people: SqlConnector, descending: bool, expected: list[str]
) -> None:
    # alice holds nothing, dave a value the map does not know (read as none); MariaDB's
    # collation makes "a" equal to "A", which the mapping does not read as true.
    statuses = {"alice": None, "Bob": "A", "carol": "T", "dave": "a", "eve": "A", "frank": "T"}
    for login, status in statuses.items():
        await people.create(Kind.USERS, {"login": login, "status": status})
    sort = Sort("status", descending=descending, ranks=ACTIVE)
    page = await people.search(Kind.USERS, Query(sort=sort))
    assert [record.values["login"] for record in page.records] == expected
    # Ranks the column cannot hold (too long) are no row's: the others still apply.
    sort = Sort("status", descending=descending, ranks=(*ACTIVE, ("toolong", 2)))
    page = await people.search(Kind.USERS, Query(sort=sort))
    assert [record.values["login"] for record in page.records] == expected


async def test_ranks_on_an_integer_column(people: SqlConnector) -> None:
    # A map to numbers: the mapping file's values may be text ("1" is 1 here).
    for login, level in {"a": 1, "b": 2, "c": 3, "d": 0, "e": None}.items():
        await people.create(Kind.USERS, {"login": login, "level": level})
    sort = Sort("level", ranks=(("1", 2), (2, 0), (3, 1), (0, 3)))
    page = await people.search(Kind.USERS, Query(sort=sort))
    assert [record.values["login"] for record in page.records] == ["b", "c", "a", "d", "e"]


@pytest.mark.parametrize("descending", [False, True])
async def test_no_value_and_an_unlisted_one_rank_as_what_they_read_as(
    people: SqlConnector, descending: bool
) -> None:
    """A lock column with `absent = true` (no value: active; a value the map does not
    list: locked): they rank as those states, not as no value."""
    statuses = {"alice": None, "Bob": "A", "carol": "T", "dave": "x"}
    for login, status in statuses.items():
        await people.create(Kind.USERS, {"login": login, "status": status})
    sort = Sort("status", descending=descending, ranks=ACTIVE, absent_rank=1, unlisted_rank=0)
    page = await people.search(Kind.USERS, Query(sort=sort))
    logins = [record.values["login"] for record in page.records]
    inactive, active = {"carol", "dave"}, {"alice", "Bob"}
    first, last = (active, inactive) if descending else (inactive, active)
    assert (set(logins[:2]), set(logins[2:])) == (first, last)
