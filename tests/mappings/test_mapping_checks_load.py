"""Mappings that would send data to the wrong place, refused when the file is loaded."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.base import Field
from mappings import Mapping, load_mapping

USERS = '[users]\nobject = "people"\nkey = "id"\n'
GROUPS = (
    '[groups]\nobject = "teams"\nkey = "id"\n[groups.attributes]\ndisplayName = "name"\n'
    '[groups.members]\nobject = "team_members"\ngroup = "team_id"\nmember = "{member}"\n'
)
DIRECTORY = (
    '[users]\nobject = "ou=people"\nkey = "entryUUID"\nclasses = ["top", "inetOrgPerson"]\n'
    'rdn = "{rdn}"\n[users.attributes]\nuserName = "uid"\n{body}\n'
)


def attributes(body: str) -> str:
    return f'{USERS}[users.attributes]\nuserName = "login"\n{body}\n'


def test_join_table_needs_two_columns(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes("") + GROUPS.format(member="Team_Id")) == [
        "my.toml: groups.members.member: 'Team_Id' is also the group column: "
        "a membership row needs two columns"
    ]


def test_users_and_groups_need_tables_of_their_own(problems: Callable[[str], list[str]]) -> None:
    text = attributes("") + GROUPS.format(member="person_id").replace('"teams"', '"People"')
    assert problems(text) == [
        "my.toml: groups.object: 'People' is also the users' table: each needs its own"
    ]


def test_memberships_need_a_table_of_their_own(problems: Callable[[str], list[str]]) -> None:
    text = attributes("") + GROUPS.format(member="person_id").replace('"team_members"', '"teams"')
    assert problems(text) == [
        "my.toml: groups.members.object: 'teams' is the users' or the groups' table: "
        "memberships need their own"
    ]


def directory_groups(container: str, classes: str) -> str:
    return (
        f'[groups]\nobject = "{container}"\nkey = "entryUUID"\nclasses = {classes}\n'
        'rdn = "cn={displayName}"\n[groups.attributes]\ndisplayName = "cn"\n'
        '[groups.members]\nfield = "member"\n'
    )


def test_directory_types_sharing_a_container_need_classes_apart(
    problems: Callable[[str], list[str]],
) -> None:
    users = DIRECTORY.format(rdn="uid={userName}", body="")
    text = users + directory_groups("OU=People", '["top", "inetOrgPerson", "groupOfNames"]')
    assert problems(text) == [
        "my.toml: groups.object: 'OU=People' shares entries with the users' 'ou=people' and the "
        "classes do not tell them apart: give each type a class the other lacks, or its own "
        "container"
    ]
    # Beneath the users' container is the same: a users' search is a subtree search.
    text = users + directory_groups("ou=groups, ou=people", '["groupOfNames", "inetOrgPerson"]')
    assert len(problems(text)) == 1


def test_directory_types_sharing_a_container_with_classes_apart(
    load: Callable[[str], Mapping],
) -> None:
    users = DIRECTORY.format(rdn="uid={userName}", body="")
    assert load(users + directory_groups("ou=people", '["top", "groupOfNames"]')).groups


def test_field_names_differing_in_case_are_one_field(
    problems: Callable[[str], list[str]],
) -> None:
    text = attributes('"name.givenName" = "first_name"\nnickName = "First_Name"')
    assert problems(text) == [
        "my.toml: users.attributes.nickName: field 'First_Name' is also written by "
        "users.attributes.name.givenName"
    ]
    text = attributes('title = "Source"') + '[users.constants]\nsource = "scim"\n'
    assert problems(text) == [
        "my.toml: users.constants.source: field 'source' is also written by "
        "users.attributes.title: give it one of the two"
    ]
    assert problems(attributes('title = "ID"')) == [
        "my.toml: users.attributes.title: field 'ID' is the key field (users.key), which the "
        "connector writes: map this to another field, or name the table's own primary key in "
        "users.key"
    ]


def test_rdn_attribute_written_by_another_rule(problems: Callable[[str], list[str]]) -> None:
    text = DIRECTORY.format(rdn="cn={userName}", body='"name.formatted" = "CN"')
    assert problems(text) == [
        "my.toml: users.rdn: 'cn' names the entry after 'userName', but "
        "users.attributes.name.formatted writes it too"
    ]
    text = DIRECTORY.format(rdn="cn={userName}", body="") + '[users.constants]\ncn = "x"\n'
    assert problems(text) == [
        "my.toml: users.rdn: 'cn' names the entry after 'userName', but users.constants "
        "writes it too"
    ]


def test_rdn_attribute_of_its_own_rule(load: Callable[[str], Mapping]) -> None:
    text = DIRECTORY.format(rdn="CN={displayName}", body='displayName = "cn"')
    assert load(text).users.spec.directory is not None


def test_typo_in_a_rule_table_is_an_unknown_key(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('title = { feild = "email" }')) == [
        "my.toml: users.attributes.title.feild: unknown key (did you mean 'field'? valid: "
        "field, default, map, case, format, split, first, reference, unique, display, "
        "template, constant, absent, bit, bit_set, base, location, empty)",
        "my.toml: users.attributes.title: needs a field, a template or a constant",
    ]
    nested = problems(attributes('[users.attributes.name]\ngivenName = { fild = "first" }'))
    assert nested[0].startswith(
        "my.toml: users.attributes.name.givenName.fild: unknown key (did you mean 'field'?"
    )


def test_tables_of_sub_attributes_are_still_paths(load: Callable[[str], Mapping]) -> None:
    mapping = load(attributes('[users.attributes.name]\ngivenName = "first"'))
    assert mapping.users.spec.field_named("first") == Field("first")


def test_empty_field_names(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('title = ""\nnickName = { field = "" }')) == [
        "my.toml: users.attributes.title: the field name must not be empty",
        "my.toml: users.attributes.nickName: the field name must not be empty",
    ]
    assert problems(attributes("") + GROUPS.format(member="")) == [
        "my.toml: groups.members.member: must not be empty"
    ]


def test_backend_names_the_file_and_the_rule_of_each_field() -> None:
    mapping = load_mapping("sql-default")
    assert getattr(mapping.backend, "source", None) == mapping.source
    status = mapping.users.spec.field_named("status")
    assert getattr(status, "key", None) == "users.attributes.active"
    assert getattr(status, "stored", None) == ("A", "T")
    title = mapping.users.spec.field_named("title")
    assert getattr(title, "writes", None) == "string"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (
            'emails = { field = "mail", first = "work" }',
            "needs split: only joined values keep their order",
        ),
        ('emails = { field = "mail", split = ",", first = " " }', "must name a type (work)"),
        ('emails = { field = "mail", split = ",", first = 1 }', "must be a string"),
    ],
)
def test_first_is_refused_where_it_cannot_hold(
    problems: Callable[[str], list[str]], rule: str, problem: str
) -> None:
    assert problems(attributes(rule)) == [f"my.toml: users.attributes.emails.first: {problem}"]


def test_first_of_another_type_than_the_rfc_lists_is_a_slip(
    load: Callable[[str], Mapping],
) -> None:
    mapping = load(attributes('emails = { field = "mail", split = ",", first = "wrok" }'))
    assert [line.split(": ", 1)[1] for line in mapping.slips] == [
        'users.attributes.emails.first: type "wrok" is not one RFC 7643 §4.1.2 lists for '
        "emails (work, home, other)"
    ]
