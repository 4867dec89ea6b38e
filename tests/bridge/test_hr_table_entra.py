"""What Entra ID (and other identity providers) send to the sql-hr-table preset, as an
admin's walkthrough sent it: values of the wrong JSON type, and the PATCH operations of
Entra's default attribute mappings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hr_table import rows
from scim_client import USER_SCHEMA, Scim, write_config
from served import serve_config

EMPLOYMENT = "urn:scim-bridge:schemas:extension:employment:2.0:User"


@pytest.fixture
async def scim(hr_url: str, tmp_path: Path, aiohttp_client: Any) -> Scim:
    config = write_config(tmp_path, hr_url, mapping="sql-hr-table")
    return await serve_config(config, aiohttp_client, None)


@pytest.mark.parametrize("number", [20260301, 1.5, True, "20260301", " 1.5e9 "])
async def test_a_number_for_a_date_is_refused_not_read_as_a_timestamp(
    scim: Scim, hr_url: str, number: Any
) -> None:
    """pydantic read 20260301 as seconds since 1970: the hire date became 23.08.1970."""
    created = await scim.create_user("dana")
    path = f"/Users/{created['id']}"
    patched = await scim.patch(
        path, {"op": "replace", "path": f"{EMPLOYMENT}:startDate", "value": number}
    )
    assert (patched.status, patched.body["scimType"]) == (400, "invalidValue"), patched.body
    assert "not a number" in patched.body["detail"]
    posted = await scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA, EMPLOYMENT],
            "userName": "eve",
            EMPLOYMENT: {"startDate": number},
        },
    )
    assert (posted.status, posted.body["scimType"]) == (400, "invalidValue"), posted.body
    assert [row.hire_date for row in await rows(hr_url, "SELECT hire_date FROM hr_staff")] == [None]
    kept = await scim.patch(
        path, {"op": "replace", "path": f"{EMPLOYMENT}:startDate", "value": "2026-03-01T00:00:00Z"}
    )
    assert kept.status == 200, kept.body
    assert kept.body[EMPLOYMENT]["startDate"].startswith("2026-03-01")


async def test_entras_rename_with_the_display_name_its_template_makes_passes(
    scim: Scim, hr_url: str
) -> None:
    """Entra's default mappings send displayName beside the names it is computed from
    (`{name.givenName} {name.familyName}` here): the whole PATCH was refused (400
    mutability), the rename and the title with it. A value equal to what the attribute
    reads once the other operations are made changes nothing, and passes; another is
    still refused, naming both."""
    created = await scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA],
            "userName": "jd",
            "name": {"givenName": "John", "familyName": "Doe"},
        },
    )
    assert created.status == 201, created.body
    path = f"/Users/{created.body['id']}"
    renamed = await scim.patch(
        path,
        {"op": "Replace", "path": "displayName", "value": "Johnny  doe"},
        {"op": "Replace", "path": "name.givenName", "value": "Johnny"},
        {"op": "Replace", "path": "title", "value": "Engineer"},
    )
    assert renamed.status == 200, renamed.body
    assert (renamed.body["displayName"], renamed.body["title"]) == ("Johnny Doe", "Engineer")
    [row] = await rows(hr_url, "SELECT first_name, job_title FROM hr_staff")
    assert (row.first_name, row.job_title) == ("Johnny", "Engineer")
    alone = await scim.patch(path, {"op": "replace", "path": "displayName", "value": "Johnny Doe"})
    assert alone.status == 200, alone.body
    qualified = "urn:ietf:params:scim:schemas:core:2.0:User:displayName"
    alone = await scim.patch(path, {"op": "replace", "path": qualified, "value": "Johnny Doe"})
    assert alone.status == 200, alone.body
    other = await scim.patch(
        path,
        {"op": "replace", "path": "displayName", "value": "Doe, Johnny"},
        {"op": "replace", "path": "title", "value": "Lead"},
    )
    assert (other.status, other.body["scimType"]) == (400, "mutability"), other.body
    assert other.body["detail"] == (
        "'displayName' is computed by this service and cannot be written: after this PATCH "
        "it reads 'Johnny Doe', not 'Doe, Johnny'"
    )
    removed = await scim.patch(path, {"op": "remove", "path": "displayName"})
    assert (removed.status, removed.body["scimType"]) == (400, "mutability"), removed.body
    [row] = await rows(hr_url, "SELECT job_title FROM hr_staff")
    assert row.job_title == "Engineer"


async def test_entras_work_address_replaces_the_first_of_the_joined_ones(
    scim: Scim, hr_url: str
) -> None:
    """mail_aliases keeps no types: Entra's `emails[type eq "work"].value` matched no
    entry, so every replace added the address beside the old ones (twice sent, twice
    stored) until the column overflowed. With `first = "work"` the first address is the
    work one: a replace changes it, the aliases stay, nothing is stored twice."""
    created = await scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA],
            "userName": "jd",
            "emails": [
                {"value": "john.doe@corp.example", "type": "home"},
                {"value": "jd@corp.example", "type": "work", "primary": True},
            ],
        },
    )
    assert created.status == 201, created.body
    assert created.body["emails"] == [
        {"value": "jd@corp.example", "type": "work", "primary": True},
        {"value": "john.doe@corp.example"},
    ]
    path = f"/Users/{created.body['id']}"
    work = {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "jd2@corp.example"}
    for _ in range(2):
        replaced = await scim.patch(path, work)
        assert replaced.status == 200, replaced.body
    [row] = await rows(hr_url, "SELECT mail_aliases FROM hr_staff")
    assert row.mail_aliases == "jd2@corp.example,john.doe@corp.example"
    again = await scim.patch(
        path, {"op": "add", "path": "emails", "value": [{"value": "JD2@corp.example"}]}
    )
    assert again.status == 200, again.body
    [row] = await rows(hr_url, "SELECT mail_aliases FROM hr_staff")
    assert row.mail_aliases == "jd2@corp.example,john.doe@corp.example"  # a set: once
    removed = await scim.patch(path, {"op": "Remove", "path": 'emails[type eq "work"].value'})
    assert removed.status == 200, removed.body
    [row] = await rows(hr_url, "SELECT mail_aliases FROM hr_staff")
    assert row.mail_aliases == "john.doe@corp.example"
    bare = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "bare"})
    first = await scim.patch(f"/Users/{bare.body['id']}", work)  # none yet: made
    assert first.body["emails"] == [
        {"value": "jd2@corp.example", "type": "work", "primary": True}
    ], first.body


async def test_the_entry_a_client_adds_or_marks_primary_becomes_the_first(
    scim: Scim, hr_url: str
) -> None:
    """With `first`, the entry read back as the work one is primary: an entry a client
    then added as primary, or marked so, stayed behind it (200, the request ignored)."""
    created = await scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA],
            "userName": "kim",
            "emails": [{"value": "old@corp.example"}, {"value": "alias@corp.example"}],
        },
    )
    path = f"/Users/{created.body['id']}"
    new = {"value": "new@corp.example", "type": "work", "primary": True}
    added = await scim.patch(path, {"op": "add", "path": "emails", "value": [new]})
    assert added.status == 200, added.body
    [row] = await rows(hr_url, "SELECT mail_aliases FROM hr_staff")
    assert row.mail_aliases == "new@corp.example,old@corp.example,alias@corp.example"
    marked = await scim.patch(
        path,
        {"op": "replace", "path": 'emails[value eq "alias@corp.example"].primary', "value": True},
    )
    assert marked.status == 200, marked.body
    assert marked.body["emails"][0] == {
        "value": "alias@corp.example",
        "type": "work",
        "primary": True,
    }
