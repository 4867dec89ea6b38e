"""The LDAP connector against a real slapd, each result read back from the directory itself.

Assertions about the directory go through a separate ldap3 connection bound as the
administrator (`slapd.connection()`), never through the connector under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import ldap3
import pytest
from recording_journal import RecordingJournal, assert_deletion_told
from slapd import SlapdServer

from connectors.base import (
    Compare,
    Conflict,
    ConnectorError,
    InvalidValue,
    Kind,
    MemberChanges,
    Membership,
    NotFound,
    Op,
    Or,
    PartiallyWritten,
    PreconditionFailed,
    Present,
    Query,
    Sort,
)
from connectors.ldap import LdapConnector, LdapSettings
from connectors.ldap.cursors import PagedSearch
from mappings import Mapping, load_mapping


def user(name: str, **more: Any) -> dict[str, Any]:
    return {"uid": name, "sn": name.title(), "cn": name, "displayName": name.title(), **more}


@contextmanager
def directory(slapd: SlapdServer) -> Iterator[ldap3.Connection]:
    connection = slapd.connection()
    try:
        yield connection
    finally:
        connection.unbind()


def read(slapd: SlapdServer, dn: str, *attributes: str) -> dict[str, list[str]] | None:
    """An entry's attributes as the directory holds them, None when there is none."""
    with directory(slapd) as connection:
        try:
            connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
        except ldap3.core.exceptions.LDAPNoSuchObjectResult:
            return None
        if not connection.response:
            return None
        raw = connection.response[0]["raw_attributes"]
        return {
            name.lower(): [v.decode() for v in values] for name, values in raw.items() if values
        }


def people(tree: str, name: str) -> str:
    return f"uid={name},ou=people,{tree}"


# --- Users ---------------------------------------------------------------------------


async def test_create_writes_the_entry(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    record = await ldap.create(Kind.USERS, user("jdoe", title="Engineer", mail="jdoe@example.com"))
    entry = read(slapd, people(ldap_tree, "jdoe"), "objectClass", "title", "mail", "entryUUID")
    assert entry is not None
    assert entry["title"] == ["Engineer"]
    assert entry["mail"] == ["jdoe@example.com"]
    assert "inetOrgPerson" in entry["objectclass"]
    assert record.id == entry["entryuuid"][0]
    assert record.values["title"] == "Engineer"


async def test_manager_is_written_as_a_dn_and_read_as_an_id(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    boss = await ldap.create(Kind.USERS, user("boss"))
    worker = await ldap.create(Kind.USERS, user("worker", manager=boss.id))
    entry = read(slapd, people(ldap_tree, "worker"), "manager")
    assert entry == {"manager": [people(ldap_tree, "boss")]}
    assert (await ldap.get(Kind.USERS, worker.id)).values["manager"] == boss.id
    with pytest.raises(InvalidValue) as refused:
        await ldap.create(Kind.USERS, user("lost", manager="0b7c6e1a-0000-4000-8000-000000000000"))
    assert refused.value.field == "manager"
    assert read(slapd, people(ldap_tree, "lost")) is None


async def test_a_user_renamed_to_a_name_a_reference_dangled_to_is_read_at_once(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    """Another program left a manager DN naming no entry: read once, the cache knows it
    as no one. A rename (or a create) that makes an entry there forgets that at once."""
    ann = await ldap.create(Kind.USERS, user("ann"))
    worker = await ldap.create(Kind.USERS, user("worker"))
    with directory(slapd) as connection:
        connection.modify(
            people(ldap_tree, "worker"),
            {"manager": [(ldap3.MODIFY_REPLACE, [people(ldap_tree, "zed")])]},
        )
    assert "manager" not in (await ldap.get(Kind.USERS, worker.id)).values
    await ldap.update(Kind.USERS, ann.id, {"uid": "zed"})
    assert (await ldap.get(Kind.USERS, worker.id)).values["manager"] == ann.id


async def test_rename_moves_the_entry_and_references_follow(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    boss = await ldap.create(Kind.USERS, user("boss"))
    worker = await ldap.create(Kind.USERS, user("worker", manager=boss.id))
    group = await ldap.create(Kind.GROUPS, {"cn": "staff"}, members=[boss.id, worker.id])
    renamed = await ldap.update(Kind.USERS, boss.id, {"uid": "chief"}, with_groups=True)
    assert renamed.id == boss.id
    assert renamed.values["uid"] == "chief"
    assert read(slapd, people(ldap_tree, "boss")) is None
    assert read(slapd, people(ldap_tree, "chief"), "uid") == {"uid": ["chief"]}
    assert read(slapd, people(ldap_tree, "worker"), "manager") == {
        "manager": [people(ldap_tree, "chief")]
    }
    members = read(slapd, f"cn=staff,ou=groups,{ldap_tree}", "member")
    assert members is not None
    assert sorted(m.lower() for m in members["member"]) == sorted(
        [people(ldap_tree, "chief").lower(), people(ldap_tree, "worker").lower()]
    )
    assert [ref.id for ref in renamed.groups or []] == [group.id]


async def test_a_rename_that_changes_only_the_case_is_written(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    created = await ldap.create(Kind.USERS, user("jdoe"))
    group = await ldap.create(Kind.GROUPS, {"cn": "staff"}, members=[created.id])
    renamed = await ldap.update(Kind.USERS, created.id, {"uid": "JDoe"}, with_groups=True)
    assert renamed.values["uid"] == "JDoe"
    assert [ref.id for ref in renamed.groups or []] == [group.id]  # still a member
    held = read(slapd, f"cn=staff,ou=groups,{ldap_tree}", "member")
    assert held is not None
    assert [value.lower() for value in held["member"]] == [people(ldap_tree, "jdoe").lower()]
    with directory(slapd) as connection:
        connection.search(f"ou=people,{ldap_tree}", "(uid=jdoe)", attributes=["uid"])
        (entry,) = connection.response
    assert entry["dn"] == people(ldap_tree, "JDoe")
    assert entry["raw_attributes"]["uid"] == [b"JDoe"]
    assert (await ldap.get(Kind.USERS, created.id)).values["uid"] == "JDoe"


@pytest.mark.parametrize(
    ("before", "after"), [("rev ", "rev"), (" ren1", "ren1"), ("ren 4", "ren  4")]
)
async def test_a_rename_that_changes_only_insignificant_spaces_keeps_the_groups(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, before: str, after: str
) -> None:
    # The directory compares the two names as one (RFC 4518 §2.6.1): the old member value
    # matched the new one, and "replacing" it removed the user from every group.
    created = await ldap.create(Kind.USERS, user(before))
    group = await ldap.create(Kind.GROUPS, {"cn": "staff"}, members=[created.id])
    renamed = await ldap.update(Kind.USERS, created.id, {"uid": after}, with_groups=True)
    assert renamed.values["uid"] == after
    assert [ref.id for ref in renamed.groups or []] == [group.id]
    held = read(slapd, f"cn=staff,ou=groups,{ldap_tree}", "member")
    assert held is not None
    assert len(held["member"]) == 1, held
    fetched = await ldap.get(Kind.GROUPS, group.id, with_members=True)
    assert [ref.id for ref in fetched.members or []] == [created.id]


@pytest.mark.parametrize("name", ["C# devs", "a#", "R&D #2"])
async def test_names_with_a_hash_inside_are_updated(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, name: str
) -> None:
    """RFC 4514 §2.4 escapes `#` only at the start of a value; slapd writes `cn=C# devs`."""
    group = await ldap.create(Kind.GROUPS, {"cn": name})
    updated = await ldap.update(Kind.GROUPS, group.id, {"cn": name, "description": "new"})
    assert updated.values["description"] == "new"
    assert read(slapd, f"cn={name},ou=groups,{ldap_tree}", "description") == {
        "description": ["new"]
    }
    renamed = await ldap.update(Kind.GROUPS, group.id, {"cn": f"{name} x"})
    assert read(slapd, f"cn={name} x,ou=groups,{ldap_tree}", "cn") == {"cn": [f"{name} x"]}
    assert renamed.values["cn"] == f"{name} x"


async def test_unique_username_is_a_conflict(ldap: LdapConnector, slapd: SlapdServer) -> None:
    first = await ldap.create(Kind.USERS, user("jdoe"))
    with pytest.raises(Conflict):
        await ldap.create(Kind.USERS, user("JDOE"))
    other = await ldap.create(Kind.USERS, user("other"))
    with pytest.raises(Conflict) as taken:
        await ldap.update(Kind.USERS, other.id, {"uid": "jdoe"})
    assert taken.value.field == "uid"
    assert (await ldap.get(Kind.USERS, first.id)).values["uid"] == "jdoe"


async def test_syntax_violation_names_the_attribute(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    created = await ldap.create(Kind.USERS, user("jdoe"))
    with pytest.raises(InvalidValue) as refused:
        await ldap.update(Kind.USERS, created.id, {"mail": "jö@exämple.com"})
    assert refused.value.field == "mail"
    assert "mail" not in (read(slapd, people(ldap_tree, "jdoe"), "mail") or {})


async def test_active_uses_the_ppolicy_lock(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, openldap: Mapping
) -> None:
    users = openldap.users
    created = await ldap.create(Kind.USERS, users.to_backend({"userName": "jdoe"}))
    assert users.to_scim(created.values)["active"] is True
    locked = await ldap.update(
        Kind.USERS,
        created.id,
        users.changes(created.values, users.to_backend({"userName": "jdoe", "active": False})),
    )
    entry = read(slapd, people(ldap_tree, "jdoe"), "pwdAccountLockedTime")
    assert entry == {"pwdaccountlockedtime": ["000001010000Z"]}
    assert users.to_scim(locked.values)["active"] is False
    page = await ldap.search(Kind.USERS, Query(where=users.condition(_filter("active eq false"))))
    assert [record.id for record in page.records] == [created.id]
    unlocked = await ldap.update(Kind.USERS, created.id, {"pwdAccountLockedTime": None})
    assert read(slapd, people(ldap_tree, "jdoe"), "pwdAccountLockedTime") == {}
    assert users.to_scim(unlocked.values)["active"] is True


def _filter(text: str) -> Any:
    from scim2_models import ScimFilter

    return ScimFilter(text).ast


async def test_version_changes_and_if_match_is_checked(ldap: LdapConnector) -> None:
    created = await ldap.create(Kind.USERS, user("jdoe"))
    changed = await ldap.update(
        Kind.USERS, created.id, {"title": "Lead"}, if_version=created.version
    )
    assert changed.version != created.version
    with pytest.raises(PreconditionFailed):
        await ldap.update(Kind.USERS, created.id, {"title": "CTO"}, if_version=created.version)
    assert (await ldap.get(Kind.USERS, created.id)).values["title"] == "Lead"


async def test_if_match_holds_against_a_write_between_the_read_and_the_modify(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version is checked by slapd within the modify (Assertion control), not only
    when the entry is read: another tool's write in between fails the update (412)."""
    created = await ldap.create(Kind.USERS, user("jdoe"))
    checked = LdapConnector._check_unique

    def another_writer_comes_first(self: Any, *args: Any, **kwargs: Any) -> Any:
        with directory(slapd) as connection:
            change = {"title": [(ldap3.MODIFY_REPLACE, ["Theirs"])]}
            connection.modify(people(ldap_tree, "jdoe"), change)
        return checked(self, *args, **kwargs)

    monkeypatch.setattr(LdapConnector, "_check_unique", another_writer_comes_first)
    with pytest.raises(PreconditionFailed):
        await ldap.update(Kind.USERS, created.id, {"title": "Ours"}, if_version=created.version)
    assert read(slapd, people(ldap_tree, "jdoe"), "title") == {"title": ["Theirs"]}


async def test_delete_removes_entry_memberships_and_manager_references(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    boss = await ldap.create(Kind.USERS, user("boss"))
    worker = await ldap.create(Kind.USERS, user("worker", manager=boss.id))
    group = await ldap.create(Kind.GROUPS, {"cn": "staff"}, members=[boss.id, worker.id])
    await ldap.delete(Kind.USERS, boss.id)
    assert read(slapd, people(ldap_tree, "boss")) is None
    assert read(slapd, people(ldap_tree, "worker"), "manager") == {}
    fetched = await ldap.get(Kind.GROUPS, group.id, with_members=True)
    assert [ref.id for ref in fetched.members or []] == [worker.id]
    with pytest.raises(NotFound):
        await ldap.get(Kind.USERS, boss.id)
    with pytest.raises(NotFound):
        await ldap.delete(Kind.USERS, boss.id)


async def test_ids_that_cannot_be_keys_are_not_found(ldap: LdapConnector) -> None:
    for bad in ("42", "*", "x)(uid=*", "00000000-0000-4000-8000-000000000000"):
        with pytest.raises(NotFound):
            await ldap.get(Kind.USERS, bad)


# --- Groups ----------------------------------------------------------------------------


def group_dn(tree: str, name: str) -> str:
    return f"cn={name},ou=groups,{tree}"


async def test_group_members_are_dns_and_an_empty_group_holds_the_placeholder(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    placeholder = f"cn=nobody,{ldap_tree}"
    alice = await ldap.create(Kind.USERS, user("alice"))
    group = await ldap.create(Kind.GROUPS, {"cn": "staff"})
    assert read(slapd, group_dn(ldap_tree, "staff"), "member") == {"member": [placeholder]}
    assert group.members == []
    changed = await ldap.update(
        Kind.GROUPS,
        group.id,
        {},
        members=MemberChanges(added=frozenset({alice.id})),
        with_members=True,
    )
    assert read(slapd, group_dn(ldap_tree, "staff"), "member") == {
        "member": [people(ldap_tree, "alice")]
    }
    assert [ref.id for ref in changed.members or []] == [alice.id]
    assert [ref.display for ref in changed.members or []] == ["Alice"]
    emptied = await ldap.update(
        Kind.GROUPS,
        group.id,
        {},
        members=MemberChanges(removed=frozenset({alice.id})),
        with_members=True,
    )
    assert read(slapd, group_dn(ldap_tree, "staff"), "member") == {"member": [placeholder]}
    assert emptied.members == []
    none = await ldap.search(Kind.GROUPS, Query(where=Membership(None, None)))
    assert none.total == 0


def calls_of(monkeypatch: pytest.MonkeyPatch, owner: type, method: str) -> list[tuple[Any, ...]]:
    """The arguments of each call of `owner.method` from now on (it still does its work)."""
    calls: list[tuple[Any, ...]] = []
    original = getattr(owner, method)

    def recorded(self: Any, *args: Any) -> Any:
        calls.append(args)
        return original(self, *args)

    monkeypatch.setattr(owner, method, recorded)
    return calls


async def add_member(ldap: LdapConnector, group: str, member: str) -> None:
    await ldap.update(Kind.GROUPS, group, {}, members=MemberChanges(added=frozenset({member})))


async def test_member_adds_know_the_placeholder_from_the_groups_search(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the group holds the placeholder is told by the search that finds it (no
    compare, nor the Assertion control): it goes with the first member, and memberof
    writes memberOf."""
    alice = await ldap.create(Kind.USERS, user("alice"))
    bob = await ldap.create(Kind.USERS, user("bob"))
    group = await ldap.create(Kind.GROUPS, {"cn": "staff"})
    compared = calls_of(monkeypatch, LdapConnector, "_holds")
    await add_member(ldap, group.id, alice.id)
    assert read(slapd, group_dn(ldap_tree, "staff"), "member") == {
        "member": [people(ldap_tree, "alice")]
    }
    await add_member(ldap, group.id, bob.id)
    assert compared == []
    held = read(slapd, group_dn(ldap_tree, "staff"), "member")
    assert held is not None
    assert sorted(held["member"]) == [people(ldap_tree, "alice"), people(ldap_tree, "bob")]
    for name in ("alice", "bob"):
        assert read(slapd, people(ldap_tree, name), "memberOf") == {
            "memberof": [group_dn(ldap_tree, "staff")]
        }


async def test_concurrent_writes_to_an_empty_group_all_land(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    """Writers that all find the placeholder (not combined: each asks for another
    answer): none may fail for the placeholder another removed, and each member added
    is in the group and has the group in its memberOf (which slapd's memberof overlay
    left out, now and then, for an add asserting the placeholder's absence that met
    another writer's removal of it)."""
    names = ["alice", "bob", "carol", "dave"]
    users = [await ldap.create(Kind.USERS, user(name)) for name in names]
    answers = [(False, False), (True, False), (False, True), (True, True)]
    for round in range(12):
        group = await ldap.create(Kind.GROUPS, {"cn": f"g{round}"})
        await asyncio.gather(
            *(
                ldap.update(
                    Kind.GROUPS,
                    group.id,
                    {},
                    members=MemberChanges(added=frozenset({member.id})),
                    with_members=with_members,
                    with_groups=with_groups,
                )
                for member, (with_members, with_groups) in zip(users, answers, strict=True)
            )
        )
        held = read(slapd, group_dn(ldap_tree, f"g{round}"), "member")
        assert held is not None
        assert sorted(held["member"]) == [people(ldap_tree, name) for name in names]
        for name in names:
            member_of = read(slapd, people(ldap_tree, name), "memberOf") or {}
            assert group_dn(ldap_tree, f"g{round}") in member_of.get("memberof", []), name


async def test_a_group_emptied_while_its_new_members_are_looked_up_loses_its_placeholder(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker removes the last member (the placeholder comes back) while this one
    looks up the member it adds: the group is found after that, so the placeholder goes."""
    placeholder = f"cn=nobody,{ldap_tree}"
    alice = await ldap.create(Kind.USERS, user("alice"))
    bob = await ldap.create(Kind.USERS, user("bob"))
    group = await ldap.create(Kind.GROUPS, {"cn": "staff"}, members=[alice.id])
    original = LdapConnector._member_targets

    def emptied_meanwhile(self: LdapConnector, *args: Any) -> Any:
        found = original(self, *args)
        with directory(slapd) as connection:
            connection.modify(
                group_dn(ldap_tree, "staff"),
                {
                    "member": [
                        (ldap3.MODIFY_ADD, [placeholder]),
                        (ldap3.MODIFY_DELETE, [people(ldap_tree, "alice")]),
                    ]
                },
            )
        return found

    monkeypatch.setattr(LdapConnector, "_member_targets", emptied_meanwhile)
    await add_member(ldap, group.id, bob.id)
    assert read(slapd, group_dn(ldap_tree, "staff"), "member") == {
        "member": [people(ldap_tree, "bob")]
    }


async def test_a_placeholder_put_back_behind_the_connectors_back_is_still_removed(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    placeholder = f"cn=nobody,{ldap_tree}"
    alice = await ldap.create(Kind.USERS, user("alice"))
    bob = await ldap.create(Kind.USERS, user("bob"))
    group = await ldap.create(Kind.GROUPS, {"cn": "staff"})
    await add_member(ldap, group.id, alice.id)
    with directory(slapd) as connection:  # another tool writes the group: a new version
        connection.modify(
            group_dn(ldap_tree, "staff"), {"member": [(ldap3.MODIFY_ADD, [placeholder])]}
        )
    await add_member(ldap, group.id, bob.id)
    held = read(slapd, group_dn(ldap_tree, "staff"), "member")
    assert held is not None
    assert sorted(held["member"]) == [people(ldap_tree, "alice"), people(ldap_tree, "bob")]


async def test_user_groups_come_from_member_of(ldap: LdapConnector) -> None:
    alice = await ldap.create(Kind.USERS, user("alice"))
    staff = await ldap.create(Kind.GROUPS, {"cn": "staff"}, members=[alice.id])
    admins = await ldap.create(Kind.GROUPS, {"cn": "admins"}, members=[alice.id])
    read_back = await ldap.get(Kind.USERS, alice.id, with_groups=True)
    assert sorted(ref.id for ref in read_back.groups or []) == sorted([staff.id, admins.id])
    assert {ref.display for ref in read_back.groups or []} == {"staff", "admins"}
    found = await ldap.search(Kind.USERS, Query(where=Membership(Op.EQ, staff.id)))
    assert [record.id for record in found.records] == [alice.id]


async def test_member_replace_is_one_replace_of_the_whole_set(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Atomic in the directory (test_ldap_member_replace.py: adds and deletes computed
    from a read let two replaces at once leave the union); nothing is sent when the set
    is already the one asked for."""
    a, b, c = [await ldap.create(Kind.USERS, user(name)) for name in ("a", "b", "c")]
    group = await ldap.create(Kind.GROUPS, {"cn": "g"}, members=[a.id, b.id])
    sent = record_modifies(monkeypatch)
    await ldap.update(
        Kind.GROUPS, group.id, {}, members=MemberChanges(replace=frozenset({b.id, c.id}))
    )
    [(dn, changes)] = [(dn, ch) for dn, ch in sent if "member" in ch]
    assert dn == group_dn(ldap_tree, "g")
    [(operation, values)] = changes["member"]
    assert operation == ldap3.MODIFY_REPLACE
    assert sorted(values) == sorted([people(ldap_tree, "b"), people(ldap_tree, "c")])
    sent.clear()
    await ldap.update(
        Kind.GROUPS, group.id, {}, members=MemberChanges(replace=frozenset({b.id, c.id}))
    )
    assert [ch for _, ch in sent if "member" in ch] == []
    members = read(slapd, group_dn(ldap_tree, "g"), "member")
    assert members is not None
    assert sorted(members["member"]) == sorted([people(ldap_tree, "b"), people(ldap_tree, "c")])


def record_modifies(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every modify the connector sends, as (dn, changes), still sent to the server."""
    sent: list[tuple[str, dict[str, Any]]] = []
    original = ldap3.Connection.modify

    def modify(
        self: ldap3.Connection, dn: str, changes: dict[str, Any], controls: Any = None
    ) -> Any:
        sent.append((dn, changes))
        return original(self, dn, changes, controls=controls)

    monkeypatch.setattr(ldap3.Connection, "modify", modify)
    return sent


def record_searches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, tuple[str, ...]]]:
    """Every search the connector sends, as (base, filter, attributes)."""
    sent: list[tuple[str, str, tuple[str, ...]]] = []
    original = ldap3.Connection.search

    def search(self: ldap3.Connection, base: str, search_filter: str, *args: Any, **kw: Any) -> Any:
        sent.append((base, search_filter, tuple(kw.get("attributes") or ())))
        return original(self, base, search_filter, *args, **kw)

    monkeypatch.setattr(ldap3.Connection, "search", search)
    return sent


async def test_adding_one_member_to_a_big_group_sends_one_value_and_reads_none(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2,000 members written directly: the connector must not read them back.
    member_dns = [people(ldap_tree, f"m{n}") for n in range(2000)]
    with directory(slapd) as connection:
        for n, dn in enumerate(member_dns):
            connection.add(dn, ["inetOrgPerson"], {"uid": f"m{n}", "sn": "m", "cn": "m"})
        connection.add(
            group_dn(ldap_tree, "big"), ["groupOfNames"], {"cn": "big", "member": member_dns}
        )
    newcomer = await ldap.create(Kind.USERS, user("newcomer"))
    page = await ldap.search(Kind.GROUPS, Query(where=Compare("cn", Op.EQ, "big")))
    [big] = page.records
    sent = record_modifies(monkeypatch)
    searches = record_searches(monkeypatch)
    await ldap.update(
        Kind.GROUPS, big.id, {}, members=MemberChanges(added=frozenset({newcomer.id}))
    )
    member_changes = [changes["member"] for _, changes in sent if "member" in changes]
    assert member_changes == [[(ldap3.MODIFY_ADD, [people(ldap_tree, "newcomer")])]]
    assert not [s for s in searches if "member" in s[2]]  # no read of the member values
    members = read(slapd, group_dn(ldap_tree, "big"), "member")
    assert members is not None
    assert len(members["member"]) == 2001


async def test_a_deletion_journals_the_entries_it_changes(
    ldap_settings: Callable[..., LdapSettings], openldap: Mapping
) -> None:
    """A deleted manager empties its reports' manager, a deleted user leaves its groups:
    each is a change of its own, so webhook receivers learn of them too."""
    journal = RecordingJournal()
    ldap = LdapConnector(ldap_settings(), openldap.backend, journal)
    await ldap.open()
    try:
        boss = await ldap.create(Kind.USERS, user("boss"))
        worker = await ldap.create(Kind.USERS, user("worker", manager=boss.id))
        await ldap.update(Kind.USERS, boss.id, {"manager": boss.id})  # itself, too
        group = await ldap.create(Kind.GROUPS, {"cn": "staff"}, members=[boss.id, worker.id])
        journal.changes.clear()
        await ldap.delete(Kind.USERS, boss.id)
        assert_deletion_told(
            journal.changes, deleted=boss.id, report=worker.id, group=group.id, manager="manager"
        )
    finally:
        await ldap.close()


async def test_member_adds_that_arrive_together_share_one_modify(
    ldap_settings: Callable[..., LdapSettings],
    openldap: Mapping,
    slapd: SlapdServer,
    ldap_tree: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    journal = RecordingJournal()
    ldap = LdapConnector(ldap_settings(), openldap.backend, journal)
    await ldap.open()
    try:
        names = [f"m{n}" for n in range(8)]
        users = [await ldap.create(Kind.USERS, user(name)) for name in names]
        first = await ldap.create(Kind.USERS, user("first"))
        # A member already: no placeholder to take out (a refused first try) to count.
        group = await ldap.create(Kind.GROUPS, {"cn": "pushed"}, members=[first.id])
        journal.changes.clear()
        sent = record_modifies(monkeypatch)
        answers = await asyncio.gather(
            *(
                ldap.update(
                    Kind.GROUPS, group.id, {}, members=MemberChanges(added=frozenset({u.id}))
                )
                for u in users
            )
        )
        member_modifies = [changes for _, changes in sent if "member" in changes]
        # The first is written at once; the seven that came meanwhile, in one more modify.
        assert len(member_modifies) == 2
        held = read(slapd, group_dn(ldap_tree, "pushed"), "member")
        assert held is not None
        assert sorted(held["member"]) == sorted(
            people(ldap_tree, name) for name in [*names, "first"]
        )
        current = await ldap.get(Kind.GROUPS, group.id)
        assert answers[-1].version == current.version  # the answer is the entry written
        assert all(answer.id == group.id for answer in answers)
        joined = [change.members_added for change in journal.changes]
        assert sorted(len(ids) for ids in joined) == [1, 7]
        assert frozenset().union(*joined) == {u.id for u in users}
    finally:
        await ldap.close()


async def test_an_update_with_a_member_naming_no_user_writes_nothing(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    group = await ldap.create(Kind.GROUPS, {"cn": "before"})
    unknown = MemberChanges(added=frozenset({"0b7c6e1a-0000-4000-8000-000000000000"}))
    with pytest.raises(InvalidValue):
        await ldap.update(
            Kind.GROUPS, group.id, {"cn": "after", "description": "d"}, members=unknown
        )
    assert read(slapd, f"cn=before,ou=groups,{ldap_tree}", "description", "cn") == {
        "cn": ["before"]
    }
    assert read(slapd, f"cn=after,ou=groups,{ldap_tree}") is None


async def test_a_bad_member_among_concurrent_adds_fails_alone(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    users = [await ldap.create(Kind.USERS, user(name)) for name in ("a", "b", "c")]
    group = await ldap.create(Kind.GROUPS, {"cn": "mixed"})
    ids = [users[0].id, users[1].id, "no-such-user", users[2].id]
    outcomes = await asyncio.gather(
        *(
            ldap.update(Kind.GROUPS, group.id, {}, members=MemberChanges(added=frozenset({i})))
            for i in ids
        ),
        return_exceptions=True,
    )
    assert [type(outcome).__name__ for outcome in outcomes] == [
        "Record",
        "Record",
        "InvalidValue",
        "Record",
    ]
    held = read(slapd, group_dn(ldap_tree, "mixed"), "member")
    assert held is not None
    assert sorted(held["member"]) == sorted(people(ldap_tree, n) for n in ("a", "b", "c"))


async def test_a_remove_and_an_add_of_one_member_keep_their_order(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    a, b = [await ldap.create(Kind.USERS, user(name)) for name in ("a", "b")]
    group = await ldap.create(Kind.GROUPS, {"cn": "order"}, members=[b.id])
    # b leaves, then joins again: written together, the add would find b there and the
    # remove then take it out.
    await asyncio.gather(
        ldap.update(Kind.GROUPS, group.id, {}, members=MemberChanges(added=frozenset({a.id}))),
        ldap.update(Kind.GROUPS, group.id, {}, members=MemberChanges(removed=frozenset({b.id}))),
        ldap.update(Kind.GROUPS, group.id, {}, members=MemberChanges(added=frozenset({b.id}))),
    )
    held = read(slapd, group_dn(ldap_tree, "order"), "member")
    assert held is not None
    assert sorted(held["member"]) == sorted(people(ldap_tree, n) for n in ("a", "b"))


async def test_removing_the_last_member_with_a_non_member_leaves_the_placeholder(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str
) -> None:
    last, stranger = [await ldap.create(Kind.USERS, user(name)) for name in ("last", "stranger")]
    group = await ldap.create(Kind.GROUPS, {"cn": "emptied"}, members=[last.id])
    # The first modify is refused for the stranger (noSuchAttribute), the second for
    # leaving groupOfNames without a member: the placeholder then stays.
    await ldap.update(
        Kind.GROUPS, group.id, {}, members=MemberChanges(removed=frozenset({last.id, stranger.id}))
    )
    assert read(slapd, group_dn(ldap_tree, "emptied"), "member") == {
        "member": [f"cn=nobody,{ldap_tree}"]
    }


async def test_posix_groups_hold_member_uids(
    connect: Callable[..., Any],
    slapd: SlapdServer,
    ldap_tree: str,
    mapping_text: Callable[[str], Mapping],
) -> None:
    mapping = mapping_text(POSIX_GROUPS)
    ldap = await connect(mapping.backend)
    alice = await ldap.create(Kind.USERS, user("alice"))
    group = await ldap.create(Kind.GROUPS, {"cn": "devs", "gidNumber": "5000"}, members=[alice.id])
    assert read(slapd, group_dn(ldap_tree, "devs"), "memberUid") == {"memberuid": ["alice"]}
    fetched = await ldap.get(Kind.GROUPS, group.id, with_members=True)
    assert [ref.id for ref in fetched.members or []] == [alice.id]
    user_read = await ldap.get(Kind.USERS, alice.id, with_groups=True)
    assert [ref.id for ref in user_read.groups or []] == [group.id]
    # memberUid compares with case (RFC 2307): a rename, even of case alone, is followed,
    # and one of insignificant spaces alone (a value it matches) is written, not lost.
    for name in ("alicia", "Alicia", "Alicia "):
        await ldap.update(Kind.USERS, alice.id, {"uid": name})
        assert read(slapd, group_dn(ldap_tree, "devs"), "memberUid") == {"memberuid": [name]}
        user_read = await ldap.get(Kind.USERS, alice.id, with_groups=True)
        assert [ref.id for ref in user_read.groups or []] == [group.id]
    await ldap.update(
        Kind.GROUPS, group.id, {}, members=MemberChanges(removed=frozenset({alice.id}))
    )
    assert read(slapd, group_dn(ldap_tree, "devs"), "memberUid") == {}
    # A group that also holds the new name (a local account's) loses the old one: left,
    # it would make whoever is named so next a member.
    jdoe = await ldap.create(Kind.USERS, user("jdoe"))
    await ldap.create(Kind.GROUPS, {"cn": "sudo", "gidNumber": "5001"}, members=[jdoe.id])
    with directory(slapd) as connection:
        sudo = {"memberUid": [(ldap3.MODIFY_ADD, ["john.doe"])]}
        assert connection.modify(group_dn(ldap_tree, "sudo"), sudo)
    await ldap.update(Kind.USERS, jdoe.id, {"uid": "john.doe"})
    assert read(slapd, group_dn(ldap_tree, "sudo"), "memberUid") == {"memberuid": ["john.doe"]}


POSIX_GROUPS = """
[users]
object = "ou=people"
key = "entryUUID"
classes = ["inetOrgPerson"]
rdn = "uid={userName}"
[users.attributes]
userName = { field = "uid", unique = true }
"name.familyName" = { field = "sn", default = "{userName}" }
"name.formatted" = { field = "cn", default = "{userName}" }
displayName = { field = "displayName", display = true }

[groups]
object = "ou=groups"
key = "entryUUID"
classes = ["posixGroup"]
rdn = "cn={displayName}"
[groups.attributes]
displayName = { field = "cn", display = true }
externalId = "gidNumber"
[groups.members]
field = "memberUid"
member_value = "uid"
"""


@pytest.fixture
def mapping_text(tmp_path: Any) -> Callable[[str], Mapping]:
    def loaded(text: str) -> Mapping:
        path = tmp_path / "mapping.toml"
        path.write_text(text)
        return load_mapping(path)

    return loaded


# --- Queries and injection ---------------------------------------------------------------


async def test_filters_compile_to_ldap(ldap: LdapConnector) -> None:
    made = {
        name: await ldap.create(Kind.USERS, user(name, title=title))
        for name, title in (("ann", "Engineer"), ("bob", "Manager"), ("cid", None))
        if True
    }
    for name, record in made.items():
        if record.values.get("title") is None:
            assert name == "cid"

    async def ids(condition: Any) -> set[str]:
        page = await ldap.search(Kind.USERS, Query(where=condition))
        assert page.total == len(page.records)
        return {record.values["uid"] for record in page.records}

    assert await ids(Compare("uid", Op.EQ, "ANN")) == {"ann"}
    assert await ids(Compare("title", Op.CO, "gine")) == {"ann"}
    assert await ids(Compare("title", Op.SW, "man")) == {"bob"}
    assert await ids(Compare("title", Op.EW, "eer")) == {"ann"}
    assert await ids(Compare("title", Op.NE, "Engineer")) == {"bob", "cid"}
    assert await ids(Present("title")) == {"ann", "bob"}
    # Ordering needs an ORDERING rule: uid has none, timestamps have one (RFC 4517).
    assert await ids(Compare("createTimestamp", Op.GT, "2000-01-01T00:00:00Z")) == made.keys()
    assert await ids(Compare("createTimestamp", Op.LE, "2000-01-01T00:00:00Z")) == set()
    assert await ids(Or((Compare("uid", Op.EQ, "ann"), Compare("uid", Op.EQ, "cid")))) == {
        "ann",
        "cid",
    }
    assert await ids(Compare("entryUUID", Op.EQ, made["bob"].id)) == {"bob"}


HOSTILE = [
    "*)(uid=*",
    "a\\b",
    "nul\x00byte",
    ",cn=admin",
    "#lead",
    " spaced ",
    "x)(|(objectClass=*",
]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_values_stay_values(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, hostile: str
) -> None:
    other = await ldap.create(Kind.USERS, user("bystander"))
    created = await ldap.create(Kind.USERS, user(hostile, title=hostile))
    # The entry is exactly one level below ou=people, whatever the name holds.
    with directory(slapd) as connection:
        connection.search(
            f"ou=people,{ldap_tree}", "(objectClass=inetOrgPerson)", ldap3.LEVEL, attributes=["uid"]
        )
        names = sorted(str(e["raw_attributes"]["uid"][0].decode()) for e in connection.response)
    assert names == sorted(["bystander", hostile])
    # Substring matching drops insignificant spaces (RFC 4518 §2.6.1): equality only there.
    ops = (Op.EQ, Op.CO, Op.SW, Op.EW) if hostile == hostile.strip() else (Op.EQ,)
    for op in ops:
        page = await ldap.search(Kind.USERS, Query(where=Compare("title", op, hostile)))
        assert [record.id for record in page.records] == [created.id], op
    page = await ldap.search(Kind.USERS, Query(where=Compare("uid", Op.EQ, hostile)))
    assert [record.id for record in page.records] == [created.id]
    assert other.id not in {record.id for record in page.records}
    renamed = await ldap.update(Kind.USERS, created.id, {"uid": hostile + "2"})
    assert renamed.values["uid"] == hostile + "2"


# --- Paging ------------------------------------------------------------------------------


async def test_sequential_pages_continue_the_server_cursor(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with directory(slapd) as connection:
        for n in range(35):
            connection.add(
                people(ldap_tree, f"p{n:02}"),
                ["inetOrgPerson"],
                {"uid": f"p{n:02}", "sn": "p", "cn": "p"},
            )
    skips = calls_of(monkeypatch, PagedSearch, "_skip")
    seen: list[str] = []
    offset = 0
    while True:
        page = await ldap.search(Kind.USERS, Query(offset=offset, limit=10))
        assert page.total == 35
        seen += [record.values["uid"] for record in page.records]
        if len(page.records) < 10:
            break
        offset += 10
    assert sorted(seen) == [f"p{n:02}" for n in range(35)]
    assert len(seen) == len(set(seen))
    # Only the first page started a search; every later one continued from the cookie.
    assert [count for _, _, count in skips] == [0]
    # A jump is still served correctly, the long way.
    jumped = await ldap.search(Kind.USERS, Query(offset=30, limit=10))
    assert len(jumped.records) == 5
    assert [count for _, _, count in skips] == [0, 30]


async def test_a_mapped_field_sorts_by_the_rank_of_what_it_reads_as(ldap: LdapConnector) -> None:
    """As the ldap-389ds preset's nsAccountLock: "TRUE" is locked (rank 0), "FALSE" and no
    value active (rank 1), a value the map does not list locked; compared without case.
    Sorting the stored text put FALSE first and no value last (true, false, false, true)."""
    for name, title in (("t", "TRUE"), ("f", "false"), ("n", None), ("o", "since-2024")):
        await ldap.create(Kind.USERS, user(name, **({"title": title} if title else {})))
    ranked = Sort("title", ranks=(("FALSE", 1), ("TRUE", 0)), absent_rank=1, unlisted_rank=0)
    page = await ldap.search(Kind.USERS, Query(sort=ranked))
    names = [record.values["uid"] for record in page.records]
    assert set(names[:2]) == {"t", "o"}
    assert set(names[2:]) == {"f", "n"}
    page = await ldap.search(Kind.USERS, Query(sort=replace(ranked, descending=True)))
    names = [record.values["uid"] for record in page.records]
    assert set(names[:2]) == {"f", "n"}
    assert set(names[2:]) == {"t", "o"}


async def test_sorted_search_and_count_only(ldap: LdapConnector) -> None:
    for name, title in (("c", "b"), ("a", None), ("b", "a")):
        await ldap.create(Kind.USERS, user(name, **({"title": title} if title else {})))
    page = await ldap.search(Kind.USERS, Query(sort=Sort("title")))
    assert [record.values["uid"] for record in page.records] == ["b", "c", "a"]
    # Without a value: last when ascending, first when descending (RFC 7644 §3.4.2.3).
    page = await ldap.search(Kind.USERS, Query(sort=Sort("title", descending=True)))
    assert [record.values["uid"] for record in page.records] == ["a", "c", "b"]
    page = await ldap.search(Kind.USERS, Query(sort=Sort("uid"), offset=1, limit=1))
    assert [record.values["uid"] for record in page.records] == ["b"]
    assert page.total == 3
    counted = await ldap.search(Kind.USERS, Query(limit=0))
    assert (counted.total, counted.records) == (3, [])


# --- Writes of several operations ------------------------------------------------------


def refuse_renames(monkeypatch: pytest.MonkeyPatch) -> None:
    """The directory refuses every modify DN (as a server with a rename ACL would)."""

    def modify_dn(self: ldap3.Connection, *args: Any, **kwargs: Any) -> Any:
        raise ldap3.core.exceptions.LDAPUnwillingToPerformResult("refused")

    monkeypatch.setattr(ldap3.Connection, "modify_dn", modify_dn)


async def test_a_refused_rename_leaves_the_entry_as_it_was(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await ldap.create(Kind.USERS, user("jdoe", title="Engineer"))
    refuse_renames(monkeypatch)
    with pytest.raises(ConnectorError) as refused:
        await ldap.update(Kind.USERS, created.id, {"uid": "john", "title": "Lead"})
    assert not isinstance(refused.value, PartiallyWritten)
    # The title was written first, then restored when the rename was refused.
    assert read(slapd, people(ldap_tree, "jdoe"), "title", "uid") == {
        "title": ["Engineer"],
        "uid": ["jdoe"],
    }
    assert read(slapd, people(ldap_tree, "john")) is None


async def test_a_rename_that_fails_and_cannot_be_undone_says_what_was_written(
    ldap: LdapConnector, slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await ldap.create(Kind.USERS, user("jdoe", title="Engineer"))
    refuse_renames(monkeypatch)
    original = ldap3.Connection.modify
    modifies: list[str] = []

    def modify_once(self: ldap3.Connection, dn: str, changes: Any, controls: Any = None) -> Any:
        modifies.append(dn)
        if len(modifies) > 1:  # the undo: the directory fails again
            raise ldap3.core.exceptions.LDAPBusyResult("busy")
        return original(self, dn, changes, controls=controls)

    monkeypatch.setattr(ldap3.Connection, "modify", modify_once)
    with pytest.raises(PartiallyWritten) as partial:
        await ldap.update(Kind.USERS, created.id, {"uid": "john", "title": "Lead"})
    assert partial.value.written == ("title",)
    # Exactly what the error reports: the new title, under the old name.
    assert read(slapd, people(ldap_tree, "jdoe"), "title", "uid") == {
        "title": ["Lead"],
        "uid": ["jdoe"],
    }


# --- Other shapes of directory ------------------------------------------------------------

DISABLED_BY_LOCATION = """
[users]
object = "ou=people"
key = "entryUUID"
classes = ["inetOrgPerson"]
rdn = "uid={userName}"
disabled_object = "ou=disabled"
[users.attributes]
userName = { field = "uid", unique = true }
"name.familyName" = { field = "sn", default = "{userName}" }
"name.formatted" = { field = "cn", default = "{userName}" }
displayName = { field = "displayName", display = true }
active = { location = true }

[groups]
object = "ou=groups"
key = "entryUUID"
classes = ["groupOfNames"]
rdn = "cn={displayName}"
[groups.attributes]
displayName = { field = "cn", display = true }
[groups.members]
field = "member"
member_of = "memberOf"
placeholder = "cn=nobody"
"""


async def test_disabled_accounts_move_to_their_own_container_and_back(
    connect: Callable[..., Any],
    slapd: SlapdServer,
    ldap_tree: str,
    mapping_text: Callable[[str], Mapping],
) -> None:
    mapping = mapping_text(DISABLED_BY_LOCATION)
    users = mapping.users
    ldap = await connect(mapping.backend)
    alice = await ldap.create(Kind.USERS, users.to_backend({"userName": "alice"}))
    bob = await ldap.create(Kind.USERS, users.to_backend({"userName": "bob", "active": False}))
    assert read(slapd, f"uid=bob,ou=disabled,{ldap_tree}", "uid") == {"uid": ["bob"]}
    assert read(slapd, people(ldap_tree, "bob")) is None
    group = await ldap.create(Kind.GROUPS, {"cn": "staff"}, members=[alice.id, bob.id])

    async def ids(text: str) -> set[str]:
        page = await ldap.search(Kind.USERS, Query(where=users.condition(_filter(text))))
        return {record.id for record in page.records}

    assert await ids("active eq false") == {bob.id}
    assert await ids("active eq true") == {alice.id}
    assert await ids("userName pr") == {alice.id, bob.id}

    disabled = await ldap.update(
        Kind.USERS,
        alice.id,
        users.changes(alice.values, users.to_backend({"userName": "alice", "active": False})),
    )
    assert disabled.id == alice.id
    assert users.to_scim(disabled.values)["active"] is False
    assert read(slapd, f"uid=alice,ou=disabled,{ldap_tree}", "uid") == {"uid": ["alice"]}
    enabled = await ldap.update(
        Kind.USERS,
        bob.id,
        users.changes(bob.values, users.to_backend({"userName": "bob", "active": True})),
    )
    assert users.to_scim(enabled.values)["active"] is True
    assert read(slapd, people(ldap_tree, "bob"), "uid") == {"uid": ["bob"]}
    # Group members follow the moves.
    members = read(slapd, group_dn(ldap_tree, "staff"), "member")
    assert members is not None
    assert sorted(m.lower() for m in members["member"]) == sorted(
        [f"uid=alice,ou=disabled,{ldap_tree}".lower(), people(ldap_tree, "bob").lower()]
    )
    fetched = await ldap.get(Kind.GROUPS, group.id, with_members=True)
    assert {ref.id for ref in fetched.members or []} == {alice.id, bob.id}


UNIQUE_MEMBERS = """
[users]
object = "ou=people"
key = "entryUUID"
classes = ["inetOrgPerson"]
rdn = "uid={userName}"
[users.attributes]
userName = { field = "uid", unique = true }
"name.familyName" = { field = "sn", default = "{userName}" }
"name.formatted" = { field = "cn", default = "{userName}" }
displayName = { field = "displayName", display = true }

[groups]
object = "ou=groups"
key = "entryUUID"
classes = ["groupOfUniqueNames"]
rdn = "cn={displayName}"
[groups.attributes]
displayName = { field = "cn", display = true }
[groups.members]
field = "uniqueMember"
placeholder = "cn=nobody"
"""


async def test_groups_of_unique_names_without_member_of(
    connect: Callable[..., Any],
    slapd: SlapdServer,
    ldap_tree: str,
    mapping_text: Callable[[str], Mapping],
) -> None:
    mapping = mapping_text(UNIQUE_MEMBERS)
    ldap = await connect(mapping.backend)
    alice = await ldap.create(Kind.USERS, user("alice"))
    bob = await ldap.create(Kind.USERS, user("bob"))
    group = await ldap.create(Kind.GROUPS, {"cn": "devs"}, members=[alice.id])
    assert read(slapd, group_dn(ldap_tree, "devs"), "uniqueMember") == {
        "uniquemember": [people(ldap_tree, "alice")]
    }
    await ldap.update(Kind.GROUPS, group.id, {}, members=MemberChanges(added=frozenset({bob.id})))
    # Without memberOf, a user's groups come from a search on uniqueMember.
    read_back = await ldap.get(Kind.USERS, bob.id, with_groups=True)
    assert [ref.id for ref in read_back.groups or []] == [group.id]
    found = await ldap.search(Kind.GROUPS, Query(where=Membership(Op.EQ, alice.id)))
    assert [record.id for record in found.records] == [group.id]
    members = (await ldap.get(Kind.GROUPS, group.id, with_members=True)).members or []
    assert sorted(ref.display or "" for ref in members) == ["Alice", "Bob"]
    # Members' names are read through a cache of DNs: this service's own write shows at once.
    await ldap.update(Kind.USERS, bob.id, {"displayName": "Robert"})
    members = (await ldap.get(Kind.GROUPS, group.id, with_members=True)).members or []
    assert sorted(ref.display or "" for ref in members) == ["Alice", "Robert"]
    await ldap.delete(Kind.USERS, alice.id)
    assert read(slapd, group_dn(ldap_tree, "devs"), "uniqueMember") == {
        "uniquemember": [people(ldap_tree, "bob")]
    }
