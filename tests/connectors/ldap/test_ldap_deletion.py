"""A user's deletion and the groups it leaves, against the real slapd.

slapd's memberof overlay (memberof-refint) takes a deleted user out of its groups by an
internal write that keeps each group's entryCSN, which is its version (ETag). The
connector takes the user out first, by writes of its own; these tests pin what follows
from that: each group's version changes, the journal is told, and a delete the directory
refuses puts the user back where it was.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import ldap3
import pytest
from recording_journal import RecordingJournal
from slapd import SlapdServer

from connectors.base import ConnectorError, Kind, Record
from connectors.ldap import LdapConnector, LdapSettings
from mappings import Mapping


def user(name: str) -> dict[str, Any]:
    return {"uid": name, "sn": name.title(), "cn": name}


def people(tree: str, name: str) -> str:
    return f"uid={name},ou=people,{tree}"


def group_dn(tree: str, name: str) -> str:
    return f"cn={name},ou=groups,{tree}"


def members(slapd: SlapdServer, dn: str) -> list[str]:
    """The group's member values as the directory holds them (lower case)."""
    connection = slapd.connection()
    try:
        connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["member"])
        return sorted(
            str(value).lower() for value in connection.response[0]["attributes"]["member"]
        )
    finally:
        connection.unbind()


def as_another_writer(slapd: SlapdServer, write: Callable[[ldap3.Connection], Any]) -> None:
    connection = slapd.connection()
    try:
        write(connection)
    finally:
        connection.unbind()


@pytest.fixture
async def journaled(
    ldap_settings: Callable[..., LdapSettings], openldap: Mapping
) -> AsyncIterator[tuple[LdapConnector, RecordingJournal]]:
    journal = RecordingJournal()
    connector = LdapConnector(ldap_settings(), openldap.backend, journal)
    await connector.open()
    yield connector, journal
    await connector.close()


async def make_crew(ldap: LdapConnector) -> tuple[Record, Record, Record, Record]:
    """`leaving`, in `crew` with `staying`, and alone in `solo` (whose placeholder comes
    back when it leaves)."""
    leaving = await ldap.create(Kind.USERS, user("leaving"))
    staying = await ldap.create(Kind.USERS, user("staying"))
    crew = await ldap.create(Kind.GROUPS, {"cn": "crew"}, members=[leaving.id, staying.id])
    solo = await ldap.create(Kind.GROUPS, {"cn": "solo"}, members=[leaving.id])
    return leaving, staying, crew, solo


async def test_every_group_a_deleted_user_leaves_gets_a_new_version_and_is_told(
    journaled: tuple[LdapConnector, RecordingJournal],
) -> None:
    ldap, journal = journaled
    leaving, _staying, crew, solo = await make_crew(ldap)
    journal.changes.clear()
    await ldap.delete(Kind.USERS, leaving.id)
    for group in (crew, solo):
        assert (await ldap.get(Kind.GROUPS, group.id)).version != group.version
    told = {change.id: change for change in journal.changes}
    assert sorted(told) == sorted([leaving.id, crew.id, solo.id])
    for group in (crew, solo):
        assert told[group.id].members_removed == {leaving.id}
        assert told[group.id].before is not None
        assert told[group.id].after is not None
        assert told[group.id].after.version != group.version
    assert told[leaving.id].after is None


async def test_a_group_joined_while_the_user_is_deleted_gets_a_new_version_too(
    journaled: tuple[LdapConnector, RecordingJournal],
    slapd: SlapdServer,
    ldap_tree: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another writer adds the user to a group after its groups were looked for: that
    group is found again and left by the service's own modify too."""
    ldap, journal = journaled
    leaving, staying, _crew, _ = await make_crew(ldap)
    late = await ldap.create(Kind.GROUPS, {"cn": "late"}, members=[staying.id])
    joined = [(ldap3.MODIFY_ADD, [people(ldap_tree, "leaving")])]
    found_first = LdapConnector._dependents
    calls: list[int] = []

    def dependents_then_joined(self: LdapConnector, *args: Any, **kwargs: Any) -> Any:
        found = found_first(self, *args, **kwargs)
        if not calls:
            as_another_writer(
                slapd, lambda other: other.modify(group_dn(ldap_tree, "late"), {"member": joined})
            )
        calls.append(1)
        return found

    monkeypatch.setattr(LdapConnector, "_dependents", dependents_then_joined)
    joined_version = (await ldap.get(Kind.GROUPS, late.id)).version
    journal.changes.clear()
    await ldap.delete(Kind.USERS, leaving.id)
    assert (await ldap.get(Kind.GROUPS, late.id)).version not in (late.version, joined_version)
    told = {change.id: change for change in journal.changes}
    assert told[late.id].members_removed == {leaving.id}
    assert members(slapd, group_dn(ldap_tree, "late")) == [people(ldap_tree, "staying").lower()]


async def test_a_group_the_user_is_added_back_to_while_deleted_is_left_again(
    journaled: tuple[LdapConnector, RecordingJournal],
    slapd: SlapdServer,
    ldap_tree: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another writer adds the user back to a group this service has just taken it out of:
    that group was not looked at again, and the delete's refint took the user out keeping
    the group's ETag of the re-add."""
    ldap, journal = journaled
    leaving, _staying, crew, _solo = await make_crew(ldap)
    leave_first = LdapConnector._leave_group
    added_back: list[bool] = []

    def left_then_added_back(self: LdapConnector, connection: Any, *args: Any) -> Any:
        left = leave_first(self, connection, *args)
        if not added_back:
            back = [(ldap3.MODIFY_ADD, [people(ldap_tree, "leaving")])]
            as_another_writer(
                slapd, lambda other: other.modify(group_dn(ldap_tree, "crew"), {"member": back})
            )
            added_back.append(True)  # once
        return left

    monkeypatch.setattr(LdapConnector, "_leave_group", left_then_added_back)
    journal.changes.clear()
    await ldap.delete(Kind.USERS, leaving.id)
    monkeypatch.undo()
    assert members(slapd, group_dn(ldap_tree, "crew")) == [people(ldap_tree, "staying").lower()]
    removals = [c.members_removed for c in journal.changes if c.id == crew.id]
    assert removals
    assert all(removed == {leaving.id} for removed in removals)
    # The last version of the group is one this service's own removal made.
    last = [c for c in journal.changes if c.id == crew.id][-1]
    assert last.after is not None
    assert (await ldap.get(Kind.GROUPS, crew.id)).version == last.after.version


async def test_a_delete_the_directory_refuses_puts_the_user_back_into_its_groups(
    journaled: tuple[LdapConnector, RecordingJournal],
    slapd: SlapdServer,
    ldap_tree: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ldap, journal = journaled
    leaving, _staying, crew, solo = await make_crew(ldap)

    def refused(self: ldap3.Connection, *args: Any, **kwargs: Any) -> Any:
        raise ldap3.core.exceptions.LDAPInsufficientAccessRightsResult("refused")

    monkeypatch.setattr(ldap3.Connection, "delete", refused)
    journal.changes.clear()
    with pytest.raises(ConnectorError):
        await ldap.delete(Kind.USERS, leaving.id)
    assert members(slapd, group_dn(ldap_tree, "crew")) == sorted(
        [people(ldap_tree, "leaving").lower(), people(ldap_tree, "staying").lower()]
    )
    assert members(slapd, group_dn(ldap_tree, "solo")) == [people(ldap_tree, "leaving").lower()]
    back = await ldap.get(Kind.USERS, leaving.id, with_groups=True)
    assert sorted(ref.id for ref in back.groups or []) == sorted([crew.id, solo.id])
    assert journal.changes == []  # nothing of it is left changed


async def test_a_group_deleted_while_a_refused_delete_is_undone_is_told_as_left(
    journaled: tuple[LdapConnector, RecordingJournal],
    slapd: SlapdServer,
    ldap_tree: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The user cannot be put back into a group that another writer deleted meanwhile;
    the others it is put back into. The group it left for good is told to the journal."""
    ldap, journal = journaled
    leaving, _staying, _crew, solo = await make_crew(ldap)

    original = ldap3.Connection.delete

    def solo_gone_then_refused(self: ldap3.Connection, *args: Any, **kwargs: Any) -> Any:
        as_another_writer(slapd, lambda other: original(other, group_dn(ldap_tree, "solo")))
        raise ldap3.core.exceptions.LDAPInsufficientAccessRightsResult("refused")

    monkeypatch.setattr(ldap3.Connection, "delete", solo_gone_then_refused)
    journal.changes.clear()
    with pytest.raises(ConnectorError):
        await ldap.delete(Kind.USERS, leaving.id)
    assert people(ldap_tree, "leaving").lower() in members(slapd, group_dn(ldap_tree, "crew"))
    assert [(change.id, change.members_removed) for change in journal.changes] == [
        (solo.id, {leaving.id})
    ]
