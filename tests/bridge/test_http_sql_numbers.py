"""Numbers on SQL end to end: decimal and integer extension attributes in numeric columns,
filters on integers no column holds, and sorting by a mapped attribute."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from direct import SqlDirect
from scim_client import USER_SCHEMA, Scim
from served import serve
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.sql.caseless import on_sqlite

HR = "urn:example:params:scim:schemas:extension:hr:2.0:User"

MAPPING = f"""
[users]
object = "people"
key = "id"

[users.attributes]
userName = {{ field = "login", unique = true }}
active = {{ field = "status", map = {{ true = "A", false = "T" }}, default = true }}

[users.attributes."{HR}"]
score = "score"
level = "level"
rating = "rating"

[extensions."{HR}".attributes]
score = "decimal"
level = "integer"
rating = "integer"
"""

TABLES = sa.MetaData()
sa.Table(
    "people",
    TABLES,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("login", sa.String(40), nullable=False, unique=True),
    sa.Column("status", sa.String(1)),
    sa.Column("score", sa.Numeric(10, 2)),
    sa.Column("level", sa.Integer),
    sa.Column("rating", sa.Numeric),  # an integer attribute in NUMERIC
)


@pytest.fixture
async def scim(
    sql_url: str, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Scim:
    engine = on_sqlite(create_async_engine(sql_url))
    async with engine.begin() as connection:
        await connection.run_sync(TABLES.create_all)
    await engine.dispose()
    (tmp_path / "hr.toml").write_text(MAPPING)
    backend = SqlDirect(sql_url.split("+", 1)[0], sql_url)
    try:
        return await serve(backend, tmp_path, aiohttp_client, monkeypatch, mapping="hr.toml")
    finally:
        await backend.close()


def q(filter_: str) -> str:
    return quote(filter_, safe="")


async def create(scim: Scim, user_name: str, active: bool, hr: dict[str, Any]) -> dict[str, Any]:
    body = {"schemas": [USER_SCHEMA, HR], "userName": user_name, "active": active, HR: hr}
    answer = await scim.post("/Users", body)
    assert answer.status == 201, answer.body
    return dict(answer.body)


async def test_decimal_and_integer_attributes_in_numeric_columns(scim: Scim) -> None:
    """The driver's Decimal made every answer holding the user a 500 (orjson refuses it)."""
    alice = await create(scim, "alice", True, {"score": 1.5, "level": 5, "rating": 7})
    assert alice[HR] == {"score": 1.5, "level": 5, "rating": 7}
    bob = await create(scim, "Bob", False, {"score": 2, "level": 2, "rating": 3})
    assert bob[HR] == {"score": 2.0, "level": 2, "rating": 3}
    assert isinstance(bob[HR]["score"], float)
    assert isinstance(bob[HR]["rating"], int)
    got = await scim.get(f"/Users/{alice['id']}")
    assert (got.status, got.body[HR]) == (200, alice[HR])
    listed = await scim.get("/Users")
    assert listed.status == 200, listed.body
    assert {user["userName"]: user[HR]["score"] for user in listed.body["Resources"]} == {
        "alice": 1.5,
        "Bob": 2.0,
    }
    filtered = await scim.get(f"/Users?filter={q(f'{HR}:score gt 1')}")
    assert (filtered.status, filtered.body["totalResults"]) == (200, 2)


async def test_an_integer_no_column_holds_is_a_valid_filter_value(scim: Scim) -> None:
    await create(scim, "alice", True, {"level": 5})
    await create(scim, "Bob", False, {"level": 2})
    expected = {
        f"{HR}:level eq 5 or {HR}:level eq 2147483648": ["alice"],
        f"{HR}:level lt 2147483648": ["Bob", "alice"],
        f"{HR}:level ne 2147483648": ["Bob", "alice"],
        f"{HR}:level gt -2147483649": ["Bob", "alice"],
        f"{HR}:level ge 9223372036854775808": [],
    }
    for filter_, names in expected.items():
        answer = await scim.get(f"/Users?filter={q(filter_)}")
        assert answer.status == 200, (filter_, answer.body)
        assert sorted(user["userName"] for user in answer.body.get("Resources", [])) == names, (
            filter_
        )


@pytest.mark.parametrize(("order", "expected"), [("ascending", False), ("descending", True)])
async def test_sort_by_a_mapped_boolean_orders_by_its_value(
    scim: Scim, order: str, expected: bool
) -> None:
    # Stored "A" (true) sorts before "T" (false); the values false < true must decide.
    await create(scim, "alice", True, {})
    await create(scim, "Bob", False, {})
    filter_ = q('userName eq "alice" or userName eq "Bob"')
    answer = await scim.get(f"/Users?filter={filter_}&sortBy=active&sortOrder={order}")
    assert answer.status == 200, answer.body
    assert [user["active"] for user in answer.body["Resources"]] == [expected, not expected]
