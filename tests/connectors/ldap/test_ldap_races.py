"""Another writer at the worst moment, made to come exactly there: the connector's own steps
are wrapped so that a rename by another connection lands between two of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from recording_journal import RecordingJournal
from slapd import SlapdServer

from connectors.base import Kind, MemberChanges
from connectors.ldap import LdapConnector
from connectors.ldap.settings import LdapSettings
from mappings import Mapping


def rename_once_after(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    rename: Callable[[tuple[Any, ...], dict[str, Any]], tuple[str, str] | None],
    slapd: SlapdServer,
) -> None:
    """Wrap LdapConnector.`method`: after its first call for which `rename(args, kwargs)`
    gives (dn, new rdn), another connection renames that entry."""
    original = getattr(LdapConnector, method)
    done: list[bool] = []

    def wrapped(self: LdapConnector, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        target = rename(args, kwargs)
        if target is not None and not done:
            done.append(True)
            other = slapd.connection()
            try:
                other.modify_dn(*target)
            finally:
                other.unbind()
        return result

    monkeypatch.setattr(LdapConnector, method, wrapped)


@pytest.mark.parametrize("member_of", [True, False])
async def test_a_new_groups_member_renamed_meanwhile_is_answered_as_stored(
    connect: Callable[..., Any],
    openldap: Mapping,
    slapd: SlapdServer,
    ldap_tree: str,
    monkeypatch: pytest.MonkeyPatch,
    member_of: bool,
) -> None:
    """The member's value is put right after the add: the answer (members, version) is
    the group as stored, not as the Post-Read of the add saw it."""
    schema = openldap.backend
    if not member_of:
        memberships = dataclasses.replace(schema.memberships, member_of=None)
        schema = dataclasses.replace(schema, memberships=memberships)
    ldap = await connect(schema)
    jane = await ldap.create(Kind.USERS, {"uid": "jane", "sn": "D", "cn": "J D"})
    rename_once_after(
        monkeypatch,
        "_member_entries",
        lambda args, kwargs: (
            (f"uid=jane,ou=people,{ldap_tree}", "uid=jane2") if kwargs.get("required") else None
        ),
        slapd,
    )
    created = await ldap.create(Kind.GROUPS, {"cn": "g1"}, members=[jane.id])
    stored = await ldap.get(Kind.GROUPS, created.id, with_members=True)
    assert created.version == stored.version
    assert [member.id for member in created.members or []] == [jane.id]
    assert [member.id for member in stored.members or []] == [jane.id]


async def test_a_member_added_while_the_group_is_renamed_is_told_once(
    ldap_settings: Callable[..., LdapSettings],
    openldap: Mapping,
    slapd: SlapdServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The group moves after the member modify, before the group is read back: the write
    is not made again (it would find the member there and tell the journal of nothing)."""
    journal = RecordingJournal()
    ldap = LdapConnector(ldap_settings(), openldap.backend, journal)
    await ldap.open()
    try:
        jane = await ldap.create(Kind.USERS, {"uid": "jane", "sn": "D", "cn": "J D"})
        group = await ldap.create(Kind.GROUPS, {"cn": "before"})
        journal.changes.clear()
        rename_once_after(
            monkeypatch,
            "_modify_members",
            lambda args, kwargs: (args[1], "cn=after") if kwargs.get("added") else None,
            slapd,
        )
        added = MemberChanges(added=frozenset({jane.id}))
        await ldap.update(Kind.GROUPS, group.id, {}, members=added)
        stored = await ldap.get(Kind.GROUPS, group.id, with_members=True)
    finally:
        await ldap.close()
    assert [change.members_added for change in journal.changes] == [frozenset({jane.id})]
    assert [member.id for member in stored.members or []] == [jane.id]
    assert stored.values["cn"] == "after"
