"""A user deleted or renamed while the entries that refer to it move (renamed or deleted by
another writer between the service's search and its modify): a directory has no
transactions, so each interleaving is made here on purpose, at the point where it hurt.

Before: the deletion answered 404 and left the group's member value and the reports'
manager DN naming an entry that was gone (a user created again under that name then
inherited them); the rename answered 200 and left the other reports' manager on the old DN.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ldap3
import pytest
from slapd import SlapdServer

from connectors.base import Kind
from connectors.ldap import LdapConnector
from connectors.ldap import connector as ldap_connector


def user(name: str, **more: Any) -> dict[str, Any]:
    return {"uid": name, "sn": name.title(), "cn": name, **more}


def people(tree: str, name: str) -> str:
    return f"uid={name},ou=people,{tree}"


def holding(slapd: SlapdServer, tree: str, dn: str) -> list[str]:
    """The entries under `tree` whose member or manager names `dn`."""
    connection = slapd.connection()
    try:
        value = ldap3.utils.conv.escape_filter_chars(dn)
        term = f"(|(member={value})(manager={value}))"
        connection.search(tree, term, ldap3.SUBTREE, attributes=["1.1"])
        return sorted(str(entry["dn"]) for entry in connection.response or [])
    finally:
        connection.unbind()


def moves(slapd: SlapdServer, *steps: tuple[str, str, str | None]) -> None:
    """(what, dn, new RDN): rename or delete entries as another writer would."""
    connection = slapd.connection()
    try:
        for what, dn, rdn in steps:
            if what == "rename":
                assert connection.modify_dn(dn, rdn)
            else:
                assert connection.delete(dn)
    finally:
        connection.unbind()


async def test_a_user_deleted_while_its_group_and_reports_move_leaves_no_reference(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss = await ldap.create(Kind.USERS, user("boss"))
    for name in ("stays", "renamed", "gone"):
        await ldap.create(Kind.USERS, user(name, manager=boss.id))
    await ldap.create(Kind.GROUPS, {"cn": "crew"}, members=[boss.id])
    found_first = LdapConnector._dependents
    calls: list[int] = []

    def dependents_then_moved(self: LdapConnector, *args: Any) -> Any:
        found = found_first(self, *args)
        if not calls:  # after the deletion found them, before it changes them
            moves(
                slapd,
                ("rename", f"cn=crew,ou=groups,{ldap_tree}", "cn=crew2"),
                ("rename", people(ldap_tree, "renamed"), "uid=renamed2"),
                ("delete", people(ldap_tree, "gone"), None),
            )
        calls.append(1)
        return found

    monkeypatch.setattr(LdapConnector, "_dependents", dependents_then_moved)
    await ldap.delete(Kind.USERS, boss.id)
    assert holding(slapd, ldap_tree, people(ldap_tree, "boss")) == []


async def test_a_user_renamed_while_a_report_is_deleted_takes_the_other_reports_along(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss = await ldap.create(Kind.USERS, user("boss"))
    for name in ("first", "second", "third"):
        await ldap.create(Kind.USERS, user(name, manager=boss.id))
    searched = ldap_connector.search_all
    deleted: list[str] = []

    def search_then_delete_one(connection: Any, base: str, term: str, *rest: Any) -> Iterator[Any]:
        found = list(searched(connection, base, term, *rest))
        if term.startswith("(manager=") and found and not deleted:
            deleted.append(found[0].dn)  # between the search and the modify of each
            moves(slapd, ("delete", found[0].dn, None))
        return iter(found)

    monkeypatch.setattr(ldap_connector, "search_all", search_then_delete_one)
    await ldap.update(Kind.USERS, boss.id, {"uid": "chief"})
    assert deleted
    assert holding(slapd, ldap_tree, people(ldap_tree, "boss")) == []
    reports = holding(slapd, ldap_tree, people(ldap_tree, "chief"))
    assert len(reports) == 2
    assert deleted[0] not in reports
