"""The ldap-389ds preset on a real 389 Directory Server, as a fresh one is configured: the
memberOf and referential integrity plugins off, the USN plugin on (tests/ds389.py).

What each request did is read from the directory itself, not through the bridge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap3
import pytest
from direct import LdapDirect
from ds389 import Ds389Server, ds389_available, start_ds389
from ports import free_port
from required import unavailable
from scim_client import GROUP_SCHEMA, Scim
from served import serve

from bridge.cli import main

MEMBER_OF = '\n[groups.members]\nmember_of = "memberOf"\n'


@pytest.fixture(scope="module")
def ds389(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ds389Server]:
    unavailable(ds389_available())
    server = start_ds389(tmp_path_factory.mktemp("ds389") / "instance", free_port())
    yield server
    server.stop()


@pytest.fixture
def tree(ds389: Ds389Server, tmp_path: Path) -> LdapDirect:
    return LdapDirect(ds389, ds389.make_tree(f"bridge-{tmp_path.name}"))  # type: ignore[arg-type]


@pytest.fixture
async def scim(
    tree: LdapDirect, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Scim:
    return await serve(tree, tmp_path, aiohttp_client, monkeypatch, mapping="ldap-389ds")


def read(tree: LdapDirect, base: str, *attributes: str) -> dict[str, list[str]]:
    """One entry's attributes (lower-case names) as the directory holds them."""
    connection = tree.slapd.connection()
    try:
        connection.search(base, "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
        raw = connection.response[0]["raw_attributes"]
        return {name.lower(): [v.decode() for v in values] for name, values in raw.items()}
    finally:
        connection.unbind()


def members_of(tree: LdapDirect, group: str) -> set[str]:
    values = read(tree, f"cn={group},ou=groups,{tree.tree}", "uniqueMember")
    return {value.lower() for value in values.get("uniquemember", [])}


def person(tree: LdapDirect, uid: str) -> str:
    return f"uid={uid},ou=people,{tree.tree}".lower()


def ids(resources: list[dict[str, Any]] | None) -> set[str]:
    return {each["value"] for each in resources or []}


async def test_memberships_are_written_and_read_back_without_the_memberof_plugin(
    scim: Scim, tree: LdapDirect
) -> None:
    alice = await scim.create_user("alice", name={"givenName": "Alice", "familyName": "Liddell"})
    bob = await scim.create_user("bob", name={"givenName": "Bob", "familyName": "Marley"})
    created = await scim.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Eng", "members": [{"value": alice["id"]}]},
    )
    assert created.status == 201, created.body
    group = created.body["id"]
    assert ids(created.body.get("members")) == {alice["id"]}
    added = await scim.patch(
        f"/Groups/{group}", {"op": "add", "path": "members", "value": [{"value": bob["id"]}]}
    )
    assert added.status in (200, 204), added.body
    assert members_of(tree, "Eng") == {person(tree, "alice"), person(tree, "bob")}
    read_back = await scim.get(f"/Groups/{group}")
    assert ids(read_back.body.get("members")) == {alice["id"], bob["id"]}
    user = await scim.get(f"/Users/{alice['id']}")
    assert ids(user.body.get("groups")) == {group}
    # Finding users by group asks the directory for memberOf, which it does not keep
    # here: said so, not answered with nobody.
    found = await scim.get(f'/Users?filter=groups.value eq "{group}"')
    assert (found.status, found.body["scimType"]) == (400, "invalidFilter")
    assert "member_of" in found.body["detail"]


async def test_a_rename_and_a_deletion_keep_the_groups_right_without_referential_integrity(
    scim: Scim, tree: LdapDirect
) -> None:
    alice = await scim.create_user("alice")
    bob = await scim.create_user("bob")
    members = [{"value": alice["id"]}, {"value": bob["id"]}]
    created = await scim.post(
        "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops", "members": members}
    )
    group = created.body["id"]
    renamed = await scim.patch(
        f"/Users/{alice['id']}", {"op": "replace", "path": "userName", "value": "alice2"}
    )
    assert renamed.status == 200, renamed.body
    assert members_of(tree, "Ops") == {person(tree, "alice2"), person(tree, "bob")}
    assert (await scim.delete(f"/Users/{bob['id']}")).status == 204
    assert members_of(tree, "Ops") == {person(tree, "alice2")}
    read_back = await scim.get(f"/Groups/{group}")
    assert ids(read_back.body.get("members")) == {alice["id"]}


async def test_deactivation_sets_nsaccountlock(scim: Scim, tree: LdapDirect) -> None:
    carol = await scim.create_user("carol")
    answer = await scim.patch(
        f"/Users/{carol['id']}", {"op": "replace", "value": {"active": False}}
    )
    assert answer.status == 200, answer.body
    assert answer.body["active"] is False
    assert read(tree, f"uid=carol,ou=people,{tree.tree}", "nsAccountLock")["nsaccountlock"] == [
        "TRUE"
    ]


async def test_every_write_changes_the_etag_even_within_one_second(
    scim: Scim, tree: LdapDirect
) -> None:
    # modifyTimestamp, which the preset took as the version before, counts seconds: two
    # writes in one second had the same ETag, and an If-Match of the first passed.
    dave = await scim.create_user("dave")
    first = await scim.patch(
        f"/Users/{dave['id']}", {"op": "replace", "path": "title", "value": "a"}
    )
    second = await scim.patch(
        f"/Users/{dave['id']}", {"op": "replace", "path": "title", "value": "b"}
    )
    versions = {
        dave["meta"]["version"],
        first.body["meta"]["version"],
        second.body["meta"]["version"],
    }
    assert len(versions) == 3
    stale = await scim.patch(
        f"/Users/{dave['id']}",
        {"op": "replace", "path": "title", "value": "c"},
        headers={"If-Match": first.body["meta"]["version"]},
    )
    assert stale.status == 412, stale.body
    group = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Etag"})
    joined = await scim.patch(
        f"/Groups/{group.body['id']}",
        {"op": "add", "path": "members", "value": [{"value": dave["id"]}]},
        headers={"If-Match": group.body["meta"]["version"]},
    )
    assert joined.status in (200, 204), joined.body
    after = await scim.get(f"/Groups/{group.body['id']}")
    assert after.body["meta"]["version"] != group.body["meta"]["version"]


async def test_a_mapping_that_reads_memberof_the_server_does_not_keep_is_refused(
    scim: Scim, tree: LdapDirect, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """memberOf named in the mapping while the memberOf plugin is off (or not set to
    follow uniqueMember): every group read as empty, every user in none, silently."""
    erin = await scim.create_user("erin")
    await scim.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Kept", "members": [{"value": erin["id"]}]},
    )
    preset = (Path(__file__).parents[2] / "mappings" / "ldap-389ds.toml").read_text()
    assert "[groups.members]" in preset
    mapping = tmp_path / "with-memberof.toml"
    lines = [line for line in preset.splitlines() if not line.startswith("member_of")]
    mapping.write_text("\n".join(lines).replace("\n[groups.members]\n", MEMBER_OF, 1))
    config = tmp_path / "config.toml"
    config.write_text(
        config.read_text().replace('mapping = "ldap-389ds"', f'mapping = "{mapping}"')
    )
    code = await asyncio.to_thread(main, ["check", "--config", str(config)])
    out = capsys.readouterr()
    assert code != 0, out
    assert "memberOf" in out.err + out.out
    assert "uniqueMember" in out.err + out.out


async def test_a_version_attribute_the_entries_lack_is_a_warning(
    scim: Scim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """entryusn is kept only while the USN plugin is on: without it, the service works on
    hashed ETags, and `check` says why they are weaker (here an attribute no entry has)."""
    await scim.create_user("frank")
    preset = (Path(__file__).parents[2] / "mappings" / "ldap-389ds.toml").read_text()
    mapping = tmp_path / "unkept-version.toml"
    mapping.write_text(preset.replace('version = "entryusn"', 'version = "roomNumber"', 1))
    config = tmp_path / "config.toml"
    config.write_text(
        config.read_text().replace('mapping = "ldap-389ds"', f'mapping = "{mapping}"')
    )
    code = await asyncio.to_thread(main, ["check", "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "users: version: the directory keeps no roomNumber on 'uid=frank," in out
    assert "groups: version" not in out  # no group to look at: nothing said
