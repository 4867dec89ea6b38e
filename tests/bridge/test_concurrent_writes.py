"""Unconditional writes that race: each is applied, none is refused as a failed precondition.

A PATCH or PUT without If-Match reads the resource and writes on the version it read; when
another write came between, that is the service's own race, not the client's condition
(RFC 7644 §3.14: 412 answers a failed If-Match). Identity providers send such writes in
parallel (Entra's and Okta's provisioning threads), so every one must land.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
from typing import Any

import pytest
from direct import group_members, user_state
from scim_client import GROUP_SCHEMA, USER_SCHEMA, Scim
from test_patch_paths import MAPPING

from bridge.resources import WRITE_ATTEMPTS, ReadOptions, ResourceService
from connectors.base import Kind, PreconditionFailed, Record, Unavailable
from mappings import load_mapping

ATTRIBUTES = ["title", "displayName", "userType", "preferredLanguage", "externalId"]
"""Mapped by every preset the suite runs (sql-default, ldap-openldap)."""


async def test_parallel_patches_of_different_attributes_all_land(scim: Scim) -> None:
    user = await scim.create_user("racer")
    for round in range(2):
        answers = await asyncio.gather(
            *(
                scim.patch(
                    f"/Users/{user['id']}",
                    {"op": "replace", "path": name, "value": f"{name}-{round}"},
                )
                for name in ATTRIBUTES
            )
        )
        assert [answer.status for answer in answers] == [200] * len(ATTRIBUTES), [
            answer.body for answer in answers if answer.status != 200
        ]
        stored = (await scim.get(f"/Users/{user['id']}")).body
        assert {name: stored.get(name) for name in ATTRIBUTES} == {
            name: f"{name}-{round}" for name in ATTRIBUTES
        }


async def test_parallel_puts_all_land_and_the_last_one_stays(scim: Scim) -> None:
    user = await scim.create_user("putter")
    body = {"schemas": [USER_SCHEMA], "userName": "putter"}
    answers = await asyncio.gather(
        *(scim.put(f"/Users/{user['id']}", {**body, "title": f"t{n}"}) for n in range(8))
    )
    assert [answer.status for answer in answers] == [200] * 8, [
        answer.body for answer in answers if answer.status != 200
    ]
    stored = (await scim.get(f"/Users/{user['id']}")).body
    assert stored["title"] in {f"t{n}" for n in range(8)}


async def test_parallel_group_patches_all_land(scim: Scim) -> None:
    created = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "racers"})
    assert created.status == 201, created.body
    group = f"/Groups/{created.body['id']}"
    answers = await asyncio.gather(
        *(
            scim.patch(group, {"op": "replace", "path": "externalId", "value": f"e{n}"})
            for n in range(8)
        )
    )
    assert {answer.status for answer in answers} <= {200, 204}, [
        answer.body for answer in answers if answer.status not in (200, 204)
    ]
    assert (await scim.get(group)).body["externalId"] in {f"e{n}" for n in range(8)}


async def test_a_failed_if_match_is_still_412(scim: Scim) -> None:
    user = await scim.create_user("guarded")
    stale = user["meta"]["version"]
    changed = await scim.patch(
        f"/Users/{user['id']}", {"op": "replace", "path": "title", "value": "a"}
    )
    assert changed.status == 200
    refused = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "replace", "path": "title", "value": "b"},
        headers={"If-Match": stale},
    )
    assert refused.status == 412
    assert (await scim.get(f"/Users/{user['id']}")).body["title"] == "a"


class WrittenMeanwhile:
    """A backend where another process writes the record between each of the first
    `interlopers` reads and the write that follows (the race of two workers)."""

    def __init__(self, interlopers: int) -> None:
        self.interlopers = interlopers
        self.record = Record("1", {"login": "ada", "title": "before"}, "1")
        self.writes = 0

    async def get(self, kind: Kind, id: str) -> Record:
        return dataclasses.replace(self.record, values=dict(self.record.values))

    async def update(
        self, kind: Kind, id: str, changes: dict[str, Any], *, if_version: str | None, **_: Any
    ) -> Record:
        if self.interlopers:
            self.interlopers -= 1
            self._write({"dept": f"set by another process {self.interlopers}"})
        if if_version is not None and if_version != self.record.version:
            raise PreconditionFailed("the record has changed since it was read")
        self._write(changes)
        return await self.get(kind, id)

    def _write(self, changes: dict[str, Any]) -> None:
        self.writes += 1
        values = {**self.record.values, **changes}
        self.record = Record("1", values, str(int(self.record.version) + 1))


def users_on(backend: WrittenMeanwhile, tmp_path: pathlib.Path) -> ResourceService:
    path = tmp_path / "mapping.toml"
    path.write_text(MAPPING)
    connector: Any = backend
    return ResourceService(Kind.USERS, load_mapping(path).users, connector)


TITLE = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "title", "value": "after"}],
}
READ = ReadOptions(members=False, groups=False)


async def test_a_write_of_another_process_between_read_and_write_is_read_again(
    tmp_path: pathlib.Path,
) -> None:
    backend = WrittenMeanwhile(interlopers=WRITE_ATTEMPTS - 1)
    record = await users_on(backend, tmp_path).patch("1", TITLE, None, READ)
    # Both writes kept: the other process's, and the PATCH made on what it wrote.
    assert record.values == {"login": "ada", "title": "after", "dept": "set by another process 0"}


async def test_with_if_match_the_other_write_fails_the_clients_condition(
    tmp_path: pathlib.Path,
) -> None:
    backend = WrittenMeanwhile(interlopers=1)
    with pytest.raises(PreconditionFailed):
        await users_on(backend, tmp_path).patch("1", TITLE, {"1"}, READ)
    assert backend.record.values["title"] == "before"


async def test_a_record_that_never_stops_changing_is_503_not_412(tmp_path: pathlib.Path) -> None:
    backend = WrittenMeanwhile(interlopers=WRITE_ATTEMPTS)
    with pytest.raises(Unavailable):
        await users_on(backend, tmp_path).replace(
            "1", {"schemas": [USER_SCHEMA], "userName": "ada", "title": "after"}, None, READ
        )
    assert backend.record.values["title"] == "before"


async def test_if_match_any_still_holds_after_another_write(tmp_path: pathlib.Path) -> None:
    # `If-Match: *` asks only that the resource exist (RFC 7232 §3.1), which another
    # process's write does not change: read again and written, not 412.
    backend = WrittenMeanwhile(interlopers=1)
    record = await users_on(backend, tmp_path).patch("1", TITLE, {"*"}, READ)
    assert record.values["title"] == "after"


async def test_a_member_added_while_the_user_is_deleted_is_added_or_refused(scim: Scim) -> None:
    """The two writes lock the user and the group in opposite orders: on MariaDB one is a
    deadlock's victim, made again rather than answered 503. Either way the group does not
    keep the deleted user (nor, in a directory, a member value naming no entry)."""
    created = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops"})
    group = f"/Groups/{created.body['id']}"
    for round in range(12):
        user = await scim.create_user(f"leaving{round}")
        deleted, added = await asyncio.gather(
            scim.delete(f"/Users/{user['id']}"),
            scim.patch(group, {"op": "add", "path": "members", "value": [{"value": user["id"]}]}),
        )
        assert deleted.status == 204, deleted.body
        assert added.status in (204, 400), added.body
        members = (await scim.get(group)).body.get("members", [])
        assert user["id"] not in {member["value"] for member in members}
        assert await group_members(scim.backend, "Ops") == set()


async def test_one_user_added_to_many_groups_at_once_is_never_503(scim: Scim) -> None:
    """Each member change writes the user too (its groups changed): two of them that
    each held the user shared, then wanted it for update, were each other's deadlock
    on MariaDB (victims redone five times, then 503)."""
    groups = []
    for n in range(12):
        created = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": f"Many{n}"})
        groups.append(f"/Groups/{created.body['id']}")
    for round in range(4):
        user = await scim.create_user(f"joiner{round}")
        joining = {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
        answers = await asyncio.gather(*(scim.patch(group, joining) for group in groups))
        assert [answer.status for answer in answers] == [204] * len(groups), [
            answer.body for answer in answers if answer.status != 204
        ]
        shown = (await scim.get(f"/Users/{user['id']}")).body.get("groups", [])
        assert len(shown) == len(groups)


async def test_members_added_while_the_user_is_renamed_follow_the_new_name(scim: Scim) -> None:
    """In a directory the member values are the user's DN, which a rename changes: one
    written with the old DN after the rename has moved the others is put right."""
    names = [f"Team{n}" for n in range(6)]
    groups = []
    for name in names:
        created = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": name})
        groups.append(f"/Groups/{created.body['id']}")
    for round in range(4):
        user = await scim.create_user(f"mover{round}")
        renamed = f"mover{round}-renamed"
        answers = await asyncio.gather(
            scim.patch(
                f"/Users/{user['id']}", {"op": "replace", "path": "userName", "value": renamed}
            ),
            *(
                scim.patch(
                    group, {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
                )
                for group in groups
            ),
        )
        assert [answer.status for answer in answers] == [200] + [204] * len(groups), [
            answer.body for answer in answers
        ]
        for name in names:
            assert renamed in (await group_members(scim.backend, name) or set()), name
        shown = (await scim.get(f"/Users/{user['id']}")).body.get("groups", [])
        assert sorted(group["display"] for group in shown) == names


async def test_members_added_while_the_group_is_renamed_all_land(scim: Scim) -> None:
    """A directory renames a group by moving its entry: a member write that found it at
    its old DN is made again at the new one, not answered 404."""
    users = [await scim.create_user(f"joiner{n}") for n in range(8)]
    for round in range(4):
        created = await scim.post(
            "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": f"Before{round}"}
        )
        group = f"/Groups/{created.body['id']}"
        answers = await asyncio.gather(
            scim.patch(group, {"op": "replace", "path": "displayName", "value": f"After{round}"}),
            *(
                scim.patch(group, {"op": "add", "path": "members", "value": [{"value": u["id"]}]})
                for u in users
            ),
        )
        assert [answer.status for answer in answers] == [204] * (1 + len(users)), [
            answer.body for answer in answers
        ]
        stored = (await scim.get(group)).body
        assert stored["displayName"] == f"After{round}"
        assert {member["value"] for member in stored["members"]} == {u["id"] for u in users}


@pytest.mark.parametrize("meanwhile", ["deleted", "renamed"])
async def test_a_manager_set_while_the_manager_goes_names_no_stale_entry(
    scim: Scim, meanwhile: str
) -> None:
    """The manager's DN, looked up then written, may name an entry a parallel deletion or
    rename has just removed: it is put right (emptied, or the new DN), never left."""
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    for round in range(4):
        boss = await scim.create_user(f"boss{round}")
        reports = [await scim.create_user(f"report{round}x{n}") for n in range(4)]
        boss_path = f"/Users/{boss['id']}"
        going = (
            scim.delete(boss_path)
            if meanwhile == "deleted"
            else scim.patch(
                boss_path, {"op": "replace", "path": "userName", "value": f"chief{round}"}
            )
        )
        answers = await asyncio.gather(
            going,
            *(
                scim.patch(
                    f"/Users/{report['id']}",
                    {"op": "replace", "path": f"{enterprise}:manager", "value": boss["id"]},
                )
                for report in reports
            ),
        )
        assert answers[0].status in (200, 204), answers[0].body
        assert all(answer.status in (200, 400) for answer in answers[1:]), [
            answer.body for answer in answers
        ]
        for report in reports:
            state = await user_state(scim.backend, report["userName"]) or {}
            stored = (await scim.get(f"/Users/{report['id']}")).body.get(enterprise, {})
            if meanwhile == "deleted":
                assert state["manager"] is None
                assert "manager" not in stored
            else:
                assert state["manager"] == f"chief{round}"
                assert stored["manager"]["value"] == boss["id"]
