"""What a column holds is what the client wrote and reads back: no rounding of decimals, no
day moved by a time zone, no padding of fixed-width text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
import sqlalchemy as sa
from sql_tables import connector_on

from connectors.base import BackendSchema, Compare, Field, InvalidValue, Kind, ObjectSpec, Op, Query
from connectors.sql import SqlConnector

STAFF = sa.MetaData()
sa.Table(
    "staff",
    STAFF,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("login", sa.CHAR(20), nullable=False),
    sa.Column("status", sa.CHAR(3)),
    sa.Column("rate", sa.Numeric(6, 2)),
    sa.Column("fte", sa.Numeric(10, 0)),
    sa.Column("hired", sa.Date),
)
PERSON = ObjectSpec(
    kind=Kind.USERS,
    object="staff",
    key="id",
    fields=tuple(Field(name) for name in ("login", "status", "rate", "fte", "hired")),
    unique=("login",),
)


@pytest.fixture
async def staff(sql_url: str) -> AsyncIterator[SqlConnector]:
    async with connector_on(sql_url, STAFF, BackendSchema(users=PERSON)) as connector:
        yield connector


async def logins(staff: SqlConnector, field: str, op: Op, value: object) -> list[str]:
    found = await staff.search(Kind.USERS, Query(where=Compare(field, op, value)))
    return sorted(record.values["login"] for record in found.records)


async def test_a_decimal_with_more_places_than_its_column_is_refused_not_rounded(
    staff: SqlConnector,
) -> None:
    kept = await staff.create(Kind.USERS, {"login": "ana", "rate": "12.50", "fte": 1})
    assert (kept.values["rate"], kept.values["fte"]) == (12.5, 1)
    for values, message in [
        ({"rate": 12.345}, "the value has more than 2 digits after the point"),
        ({"rate": "0.001"}, "the value has more than 2 digits after the point"),
        ({"fte": 0.5}, "the value is not a whole number"),
    ]:
        with pytest.raises(InvalidValue) as raised:
            await staff.create(Kind.USERS, {"login": "bo", **values})
        assert (raised.value.field, raised.value.message) == (next(iter(values)), message)
        with pytest.raises(InvalidValue):
            await staff.update(Kind.USERS, kept.id, values)
    assert [
        record.values["login"] for record in (await staff.search(Kind.USERS, Query())).records
    ] == ["ana"]
    assert (await staff.get(Kind.USERS, kept.id)).values["rate"] == 12.5
    # A filter's operand is compared, never stored: any precision is a valid filter.
    assert await logins(staff, "rate", Op.GT, 12.499) == ["ana"]
    assert await logins(staff, "rate", Op.LT, 12.499) == []
    assert await logins(staff, "fte", Op.GT, 0.5) == ["ana"]


async def test_a_date_is_stored_as_the_day_the_client_wrote(staff: SqlConnector) -> None:
    # Midnight in UTC+2 is 22:00 the day before in UTC: the day is still 1 March.
    record = await staff.create(Kind.USERS, {"login": "ana", "hired": "2026-03-01T00:00:00+02:00"})
    late = await staff.create(Kind.USERS, {"login": "bo", "hired": "2026-03-15T23:30:00-05:00"})
    assert record.values["hired"] == date(2026, 3, 1)
    assert late.values["hired"] == date(2026, 3, 15)
    assert await logins(staff, "hired", Op.EQ, "2026-03-01") == ["ana"]


async def test_fixed_width_text_reads_back_without_its_padding(staff: SqlConnector) -> None:
    record = await staff.create(Kind.USERS, {"login": "alice", "status": "T"})
    assert (record.values["login"], record.values["status"]) == ("alice", "T")
    fetched = await staff.get(Kind.USERS, record.id)
    assert (fetched.values["login"], fetched.values["status"]) == ("alice", "T")
    assert await logins(staff, "login", Op.EQ, "alice") == ["alice"]
    assert await logins(staff, "status", Op.EQ, "T") == ["alice"]
    assert await logins(staff, "login", Op.EW, "ce") == ["alice"]
