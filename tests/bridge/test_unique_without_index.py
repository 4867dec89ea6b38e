"""Writes that race on a legacy table the service did not create and may not change: the
sql-hr-table preset's `hr_staff`, as its header defines it, with no unique index on the
login and no foreign key on the manager. What the database holds is read directly.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hr_table import execute, rows, user
from scim_client import TOKEN, Scim, write_config
from served import serve_config

from bridge.cli import main

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture
async def scim(hr_url: str, tmp_path: Path, aiohttp_client: Any) -> Scim:
    config = write_config(tmp_path, hr_url, mapping="sql-hr-table")
    return await serve_config(config, aiohttp_client, None)


async def test_parallel_creates_of_one_user_name_make_one_user(scim: Scim, hr_url: str) -> None:
    for round in range(5):
        names = [f"Dup{round}@corp.test", f"dup{round}@CORP.test"] * 10
        answers = await asyncio.gather(*(scim.post("/Users", user(name)) for name in names))
        statuses = sorted(answer.status for answer in answers)
        assert statuses == [201] + [409] * 19, [
            a.body for a in answers if a.status not in (201, 409)
        ]
        assert {a.body["scimType"] for a in answers if a.status == 409} == {"uniqueness"}
    found = await rows(hr_url, "SELECT login FROM hr_staff ORDER BY login")
    assert [row.login for row in found] == [f"dup{round}@corp.test" for round in range(5)]


async def test_parallel_renames_to_one_user_name_rename_one_user(scim: Scim, hr_url: str) -> None:
    created = [await scim.create_user(f"renamed{n}") for n in range(10)]
    answers = await asyncio.gather(
        *(
            scim.patch(f"/Users/{each['id']}", {"op": "replace", "path": "userName", "value": "X"})
            for each in created
        ),
        scim.post("/Users", user("x")),
    )
    assert sorted(answer.status for answer in answers).count(409) == 10, [
        (a.status, a.body) for a in answers
    ]
    found = await rows(hr_url, "SELECT login FROM hr_staff WHERE login = 'x'")
    assert len(found) == 1


async def test_a_manager_set_while_the_manager_is_deleted_leaves_no_reference(
    scim: Scim, hr_url: str
) -> None:
    for _ in range(3):
        boss = await scim.create_user("boss")
        reports = [await scim.create_user(f"report{n}") for n in range(10)]
        manager = {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": boss["id"]}}
        answers = await asyncio.gather(
            *(scim.patch(f"/Users/{each['id']}", manager) for each in reports),
            scim.delete(f"/Users/{boss['id']}"),
        )
        assert all(answer.status in (200, 204, 400) for answer in answers), [
            (a.status, a.body) for a in answers
        ]
        dangling = await rows(
            hr_url,
            f"SELECT employee_id FROM hr_staff WHERE manager_id = '{boss['id']}'",  # noqa: S608
        )
        assert dangling == []
        for each in reports:
            assert (await scim.delete(f"/Users/{each['id']}")).status == 204


async def test_check_says_what_an_index_would_add(
    hr_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", TOKEN)
    config = write_config(tmp_path, hr_url, mapping="sql-hr-table")
    code = await asyncio.to_thread(main, ["check", "--config", str(config)])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured
    if hr_url.startswith("postgresql"):
        assert "users: login is unique, and hr_staff has no unique index on lower(login)" in out
        assert "CREATE UNIQUE INDEX ON hr_staff (lower(login))" in out
    else:  # MariaDB indexes no expression; a collation that ignores case does it
        assert (
            "users: login is unique, and hr_staff has no unique index on login in a "
            "collation that ignores case (_ci)"
        ) in out
        assert "ALTER TABLE hr_staff ADD UNIQUE (login)" in out


async def test_the_index_check_advises_is_taken_and_answers_409_on_its_own(
    hr_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Any,
) -> None:
    # What check advised, added: the warning goes, and the database's own refusal of a
    # name taken in another case is the 409 the service's check gave (RFC 7644 §3.3).
    index = (
        "CREATE UNIQUE INDEX hr_login_lower ON hr_staff (lower(login))"
        if hr_url.startswith("postgresql")
        else "ALTER TABLE hr_staff ADD UNIQUE hr_login (login)"
    )
    await execute(hr_url, index)
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", TOKEN)
    config = write_config(tmp_path, hr_url, mapping="sql-hr-table")
    code = await asyncio.to_thread(main, ["check", "--config", str(config)])
    captured = capsys.readouterr()
    assert code == 0, captured
    assert "warning" not in captured.out
    scim = await serve_config(config, aiohttp_client, None)
    assert (await scim.post("/Users", user("Alice"))).status == 201
    taken = await scim.post("/Users", user("alice"))
    assert taken.status == 409
    assert taken.body["scimType"] == "uniqueness"
    assert len(await rows(hr_url, "SELECT login FROM hr_staff")) == 1


async def test_an_address_holding_the_separator_is_refused_not_split(
    scim: Scim, hr_url: str
) -> None:
    # mail_aliases holds every address, comma-separated: `a,b@corp.test` was stored as
    # written and read back as two addresses, `a` and `b@corp.test`.
    refused = await scim.post("/Users", user("split", emails=[{"value": "a,b@corp.test"}]))
    assert (refused.status, refused.body["scimType"]) == (400, "invalidValue"), refused.body
    assert await rows(hr_url, "SELECT login FROM hr_staff") == []
    kept = await scim.create_user("kept", emails=[{"value": "kept@corp.test"}])
    smuggled = {"op": "replace", "path": "emails", "value": [{"value": "x@corp.test,evil@x.test"}]}
    answer = await scim.patch(f"/Users/{kept['id']}", smuggled)
    assert (answer.status, answer.body["scimType"]) == (400, "invalidValue"), answer.body
    [row] = await rows(hr_url, "SELECT mail_aliases FROM hr_staff")
    assert row.mail_aliases == "kept@corp.test"
