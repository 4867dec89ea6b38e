"""A group's whole member set sent at once (PUT, a PATCH replacing `members`), by two
clients at the same moment, against the real slapd."""

from __future__ import annotations

import asyncio

import ldap3
from slapd import SlapdServer

from connectors.base import Kind, MemberChanges
from connectors.ldap import LdapConnector


def member_of(slapd: SlapdServer, dn: str) -> list[str]:
    connection = slapd.connection()
    try:
        connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["memberOf"])
        return [str(each).lower() for each in connection.response[0]["attributes"]["memberOf"]]
    finally:
        connection.unbind()


async def test_two_replaces_at_once_leave_one_of_the_two_sets(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    """Sent as adds and deletes computed from a read, both went through: the second's
    deletes of what the first had removed counted as done, and the group held both sets,
    keeping the members a replace was to take out (4 rounds in 5, seen by a review)."""
    names = ("was", "first", "second", "both")
    users = [await ldap.create(Kind.USERS, {"uid": name, "sn": name, "cn": name}) for name in names]
    was, first, second, both = (each.id for each in users)
    for round in range(8):
        group = await ldap.create(Kind.GROUPS, {"cn": f"swap{round}"}, members=[was])
        sets = {frozenset({first, both}), frozenset({second, both})}
        await asyncio.gather(
            *(
                ldap.update(Kind.GROUPS, group.id, {}, members=MemberChanges(replace=each))
                for each in sets
            )
        )
        after = await ldap.get(Kind.GROUPS, group.id, with_members=True)
        held = frozenset(member.id for member in after.members or [])
        assert held in sets, round
        for name, user in zip(names, users, strict=True):
            groups = member_of(slapd, f"uid={name},ou=people,{ldap_tree}")
            in_group = any(dn.startswith(f"cn=swap{round},") for dn in groups)
            assert in_group is (user.id in held), (round, name)  # memberOf follows
