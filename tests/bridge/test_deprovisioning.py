"""Deprovisioning policies (`[users]` and `[groups]` in the configuration), on every backend.

What each policy did is read from the backend itself, not through the bridge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from direct import Direct, LdapDirect, SqlDirect
from scim_client import GROUP_SCHEMA, USER_SCHEMA, Scim
from served import serve

from bridge.cli import main


def is_disabled(backend: Direct, stored: dict[str, Any]) -> bool:
    """The account state as the backend holds it, read the way its own tools read it."""
    if isinstance(backend, LdapDirect):
        return "pwdaccountlockedtime" in stored
    return bool(stored["status"] == "T")


async def policy_client(
    backend: Direct, tmp_path: Path, aiohttp_client: Any, monkeypatch: Any, policy: str
) -> Scim:
    return await serve(backend, tmp_path, aiohttp_client, monkeypatch, extra=policy)


async def test_on_delete_disable_keeps_the_account_disabled(
    backend: Direct, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scim = await policy_client(
        backend, tmp_path, aiohttp_client, monkeypatch, '[users]\non_delete = "disable"\n'
    )
    user = await scim.create_user("leaver", title="Clerk")
    assert (await scim.delete(f"/Users/{user['id']}")).status == 204
    stored = await backend.user("leaver")
    assert stored is not None
    assert is_disabled(backend, stored)
    # Kept on purpose, and said so: the resource stays readable, disabled.
    again = await scim.get(f"/Users/{user['id']}")
    assert again.status == 200
    assert again.body["active"] is False
    assert again.body["title"] == "Clerk"


async def test_on_deactivate_delete_removes_the_account(
    backend: Direct, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scim = await policy_client(
        backend, tmp_path, aiohttp_client, monkeypatch, '[users]\non_deactivate = "delete"\n'
    )
    patched = await scim.create_user("patched")
    put = await scim.create_user("put")
    await scim.patch(f"/Users/{patched['id']}", {"op": "replace", "path": "title", "value": "x"})
    answer = await scim.patch(
        f"/Users/{patched['id']}", {"op": "replace", "value": {"active": False}}
    )
    assert answer.status == 200, answer.body
    assert answer.body["userName"] == "patched"
    # The last state, as the client asked it: `active: true` would read as a failure.
    assert answer.body["active"] is False
    assert await backend.user("patched") is None
    assert (await scim.get(f"/Users/{patched['id']}")).status == 404
    replaced = await scim.put(
        f"/Users/{put['id']}", {"schemas": [USER_SCHEMA], "userName": "put", "active": False}
    )
    assert replaced.status == 200, replaced.body
    assert replaced.body["active"] is False
    assert await backend.user("put") is None


async def test_on_delete_move_archives_the_entry_out_of_its_groups(
    ldap_direct: LdapDirect, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scim = await policy_client(
        ldap_direct,
        tmp_path,
        aiohttp_client,
        monkeypatch,
        '[users]\non_delete = "move"\narchive = "ou=archive"\n',
    )
    leaver = await scim.create_user("leaver")
    stayer = await scim.create_user("stayer")
    group = await scim.post(
        "/Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Staff",
            "members": [{"value": leaver["id"]}, {"value": stayer["id"]}],
        },
    )
    assert (await scim.delete(f"/Users/{leaver['id']}")).status == 204
    assert (await scim.get(f"/Users/{leaver['id']}")).status == 404
    tree = ldap_direct.tree
    [archived] = ldap_direct.search(f"ou=archive,{tree}", "(uid=leaver)")
    assert archived["dn"] == f"uid=leaver,ou=archive,{tree}"
    assert "pwdaccountlockedtime" in archived  # disabled as well, since the mapping can
    [staff] = ldap_direct.search(f"ou=groups,{tree}", "(cn=Staff)", "member")
    assert staff["member"] == [ldap_direct.people_dn("stayer")]
    members = (await scim.get(f"/Groups/{group.body['id']}")).body["members"]
    assert [member["value"] for member in members] == [stayer["id"]]
    # The name is free again: the same person can be provisioned anew.
    back = await scim.create_user("leaver")
    assert back["id"] != leaver["id"]
    # Archiving it again would collide with the archived entry: 409, and it stays in
    # its groups (nothing is written).
    joined = {"op": "add", "path": "members", "value": [{"value": back["id"]}]}
    await scim.patch(f"/Groups/{group.body['id']}", joined)
    refused = await scim.delete(f"/Users/{back['id']}")
    assert (refused.status, refused.body.get("scimType")) == (409, "uniqueness")
    [staff] = ldap_direct.search(f"ou=groups,{tree}", "(cn=Staff)", "member")
    assert sorted(staff["member"]) == sorted(
        [ldap_direct.people_dn("stayer"), ldap_direct.people_dn("leaver")]
    )
    # Nor is the account disabled (it was, before the 409 said nothing was written).
    assert (await scim.get(f"/Users/{back['id']}")).body["active"] is True
    [kept] = ldap_direct.search(f"ou=people,{tree}", "(uid=leaver)")
    assert "pwdaccountlockedtime" not in kept


async def test_groups_on_delete_move_archives_the_group_without_its_members(
    ldap_direct: LdapDirect, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deleted group confers no membership, archived or not: a reader that searches the
    whole tree for `member=<user>` (or reads memberOf) must not find it."""
    scim = await policy_client(
        ldap_direct,
        tmp_path,
        aiohttp_client,
        monkeypatch,
        '[groups]\non_delete = "move"\narchive = "ou=archive"\n',
    )
    first = await scim.create_user("first")
    second = await scim.create_user("second")
    members = [{"value": first["id"]}, {"value": second["id"]}]
    group = await scim.post(
        "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Vpn", "members": members}
    )
    kept = await scim.post(
        "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Kept", "members": members[:1]}
    )
    assert (await scim.delete(f"/Groups/{group.body['id']}")).status == 204
    assert (await scim.get(f"/Groups/{group.body['id']}")).status == 404
    tree = ldap_direct.tree
    [archived] = ldap_direct.search(f"ou=archive,{tree}", "(cn=Vpn)", "member")
    assert archived["dn"] == f"cn=Vpn,ou=archive,{tree}"
    people = {ldap_direct.people_dn("first").lower(), ldap_direct.people_dn("second").lower()}
    assert not people & {value.lower() for value in archived.get("member", [])}
    assert ldap_direct.search(tree, f"(member={ldap_direct.people_dn('second')})") == []
    [still] = ldap_direct.search(tree, f"(member={ldap_direct.people_dn('first')})")
    assert still["dn"] == f"cn=Kept,ou=groups,{tree}"
    for name, expected in (("first", [f"cn=Kept,ou=groups,{tree}"]), ("second", [])):
        [user] = ldap_direct.search(f"ou=people,{tree}", f"(uid={name})", "memberOf")
        assert [dn.lower() for dn in user.get("memberof", [])] == [e.lower() for e in expected]
    # What SCIM says agrees with the directory: only `first` is in a group.
    answer = await scim.get("/Users?filter=groups pr&attributes=userName")
    assert [user["userName"] for user in answer.body["Resources"]] == ["first"]
    assert kept.status == 201


async def test_without_an_active_rule_deactivation_is_refused_not_ignored(
    sqlite_direct: SqlDirect,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "no-active.toml").write_text(NO_ACTIVE)
    scim = await serve(
        sqlite_direct, tmp_path, aiohttp_client, monkeypatch, mapping="no-active.toml"
    )
    user = await scim.create_user("kept", active=True)
    refused = await scim.patch(
        f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": False}
    )
    assert refused.status == 400
    assert refused.body["scimType"] == "invalidValue"
    assert "on_deactivate" in refused.body["detail"]
    created = await scim.post(
        "/Users", {"schemas": [USER_SCHEMA], "userName": "x", "active": False}
    )
    assert created.status == 400
    assert await sqlite_direct.user("x") is None
    assert await sqlite_direct.user("kept") is not None


NO_ACTIVE = """
[users]
object = "users"
key = "id"
version = "version"
[users.attributes]
userName = { field = "user_name", unique = true }
title = "title"
"""


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            '[users]\non_delete = "move"\narchive = "ou=archive"\n',
            'users.on_delete: "move" needs a directory (connector type "ldap")',
        ),
        ('[users]\non_delete = "move"\n', 'users: on_delete = "move" needs archive'),
        ('[groups]\narchive = "ou=x"\n', 'groups: archive applies only with on_delete = "move"'),
        ('[users]\non_delete = "disable"\non_deactivate = "delete"\n', "users: on_deactivate"),
        ('[users]\non_delete = "erase"\n', "users.on_delete: input should be"),
    ],
)
def test_policy_mistakes_are_named(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
    expected: str,
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    config = tmp_path / "config.toml"
    config.write_text(
        'mapping = "sql-default"\n[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
        f'[connector]\ntype = "sql"\nurl = "sqlite+aiosqlite:///{tmp_path}/x.db"\n'
        f"create_tables = true\n{policy}"
    )
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}: {expected}" in err, err


def test_disable_without_an_active_rule_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    (tmp_path / "no-active.toml").write_text(NO_ACTIVE)
    config = tmp_path / "config.toml"
    config.write_text(
        'mapping = "no-active.toml"\n[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
        f'[connector]\ntype = "sql"\nurl = "sqlite+aiosqlite:///{tmp_path}/x.db"\n'
        'create_tables = true\n[users]\non_delete = "disable"\n'
    )
    assert main(["check", "--config", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f'{config}: users.on_delete: "disable" needs an active rule in the mapping '
        f"{tmp_path / 'no-active.toml'}"
    ]


async def test_a_refusal_the_operator_chose_says_so(
    sqlite_direct: SqlDirect,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # sql-default stores the account state: a refusal is the configuration's choice, and
    # must not blame a mapping that stores none.
    scim = await serve(
        sqlite_direct,
        tmp_path,
        aiohttp_client,
        monkeypatch,
        extra='[users]\non_deactivate = "refuse"\n',
    )
    user = await scim.create_user("kept", active=True)
    refused = await scim.patch(
        f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": False}
    )
    assert (refused.status, refused.body["scimType"]) == (400, "invalidValue")
    assert refused.body["detail"] == (
        'active: this service does not disable users: users.on_deactivate is "refuse" on this '
        "service"
    )
    # Nor does it create an account disabled, which it would refuse to make so.
    created = await scim.post(
        "/Users", {"schemas": [USER_SCHEMA], "userName": "born-disabled", "active": False}
    )
    assert (created.status, created.body["detail"]) == (400, refused.body["detail"])
    assert await sqlite_direct.user("born-disabled") is None


async def test_on_deactivate_delete_creates_no_inactive_account(
    backend: Direct, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An inactive account is what this policy deletes: one is not created either (it was,
    and stayed, since only a change from active to inactive deprovisions)."""
    scim = await policy_client(
        backend, tmp_path, aiohttp_client, monkeypatch, '[users]\non_deactivate = "delete"\n'
    )
    created = await scim.post(
        "/Users", {"schemas": [USER_SCHEMA], "userName": "born-disabled", "active": False}
    )
    assert (created.status, created.body["scimType"]) == (400, "invalidValue")
    assert created.body["detail"] == (
        'active: this service does not disable users: users.on_deactivate is "delete" on this '
        "service"
    )
    assert await backend.user("born-disabled") is None
    assert (await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "ok"})).status == 201
