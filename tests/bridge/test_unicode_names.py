"""A name sent composed or decomposed is one name, on every backend (mappings.names).

"José" as é (U+00E9) or as e and U+0301: OpenLDAP matches the two as one, a SQL column
and its unique index do not; without the service's help the same person could get two
accounts on PostgreSQL, MariaDB and SQLite, and one on OpenLDAP.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from backends import BACKENDS, create_database, create_default_tables, drop_database
from direct import LdapDirect, SqlDirect
from scim_client import GROUP_SCHEMA, USER_SCHEMA, Scim
from served import serve

COMPOSED = unicodedata.normalize("NFC", "José.Núñez")
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)
assert COMPOSED != DECOMPOSED


@pytest.fixture(params=BACKENDS)
async def sql_scim(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Scim]:
    """The service on each SQL backend: rows another program wrote are SQL's case."""
    url = await create_database(request.param, tmp_path)
    await create_default_tables(url)
    direct = SqlDirect(request.param, url)
    yield await serve(direct, tmp_path, aiohttp_client, monkeypatch)
    await direct.close()
    await drop_database(request.param, url)


def q(filter_: str) -> str:
    return quote(filter_, safe="")


async def stored_user_names(scim: Scim) -> list[str]:
    """userName as the backend holds it, byte for byte."""
    backend = scim.backend
    if isinstance(backend, SqlDirect):
        return [row["user_name"] for row in await backend.rows("SELECT user_name FROM users")]
    assert isinstance(backend, LdapDirect)
    return [
        value
        for entry in backend.search(backend.tree, "(objectClass=inetOrgPerson)", "uid")
        for value in entry.get("uid", [])
    ]


async def test_a_name_sent_decomposed_is_written_and_answered_composed(scim: Scim) -> None:
    answer = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": DECOMPOSED})
    assert answer.status == 201, answer.body
    assert answer.body["userName"] == COMPOSED
    assert await stored_user_names(scim) == [COMPOSED]
    read = await scim.get(f"/Users/{answer.body['id']}")
    assert read.body["userName"] == COMPOSED


@pytest.mark.parametrize(("first", "then"), [(COMPOSED, DECOMPOSED), (DECOMPOSED, COMPOSED)])
async def test_the_same_name_in_the_other_form_is_409_uniqueness(
    scim: Scim, first: str, then: str
) -> None:
    await scim.create_user(first)
    answer = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": then})
    assert (answer.status, answer.body.get("scimType")) == (409, "uniqueness"), answer.body
    other = await scim.create_user("other")
    renamed = await scim.patch(
        f"/Users/{other['id']}", {"op": "replace", "path": "userName", "value": then}
    )
    assert (renamed.status, renamed.body.get("scimType")) == (409, "uniqueness"), renamed.body
    assert sorted(await stored_user_names(scim)) == sorted([COMPOSED, "other"])


@pytest.mark.parametrize("sent", [COMPOSED, DECOMPOSED])
async def test_a_filter_finds_the_name_in_either_form(scim: Scim, sent: str) -> None:
    """What an identity provider does before each create: `userName eq`, in its own form."""
    user = await scim.create_user(COMPOSED)
    await scim.create_user("someone.else")
    for filter_ in (f'userName eq "{sent}"', f'userName sw "{sent[:5]}"'):
        found = await scim.get(f"/Users?filter={q(filter_)}")
        assert found.status == 200, found.body
        assert [r["id"] for r in found.body["Resources"]] == [user["id"]], filter_
    unequal = f'userName ne "{sent}"'
    missed = await scim.get(f"/Users?filter={q(unequal)}")
    assert [r["userName"] for r in missed.body["Resources"]] == ["someone.else"]


async def test_a_group_name_is_one_name_in_either_form(scim: Scim) -> None:
    made = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": DECOMPOSED})
    assert made.status == 201, made.body
    assert made.body["displayName"] == COMPOSED
    named = f'displayName eq "{DECOMPOSED}"'
    found = await scim.get(f"/Groups?filter={q(named)}")
    assert [r["id"] for r in found.body["Resources"]] == [made.body["id"]]


async def test_a_name_another_program_stored_decomposed_is_found_and_kept(
    sql_scim: Scim,
) -> None:
    """A row written in NFD before (or beside) the service: `eq` in NFC still finds it, so
    an identity provider links it rather than creating a second account; a PATCH of
    another attribute, or a PUT sending the name composed, does not rewrite the name."""
    scim = sql_scim
    assert isinstance(scim.backend, SqlDirect)
    user = await scim.create_user("plain")
    await scim.backend.set_user_field("plain", "user_name", DECOMPOSED)
    named = f'userName eq "{COMPOSED}"'
    found = await scim.get(f"/Users?filter={q(named)}")
    assert [r["id"] for r in found.body["Resources"]] == [user["id"]]
    patched = await scim.patch(
        f"/Users/{user['id']}", {"op": "replace", "path": "title", "value": "Engineer"}
    )
    assert patched.status == 200, patched.body
    put = await scim.put(
        f"/Users/{user['id']}",
        {"schemas": [USER_SCHEMA], "userName": COMPOSED, "title": "Lead"},
    )
    assert put.status == 200, put.body
    assert put.body["userName"] == DECOMPOSED
    assert await stored_user_names(scim) == [DECOMPOSED]
    renamed = await scim.patch(
        f"/Users/{user['id']}", {"op": "replace", "path": "userName", "value": "Jose.N"}
    )
    assert renamed.body["userName"] == "Jose.N"
