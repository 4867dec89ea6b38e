"""Loading mapping files: the typed result, and every kind of problem as its exact line."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.base import Field, Kind, MembershipSpec
from mappings import Mapping, MappingError, load_mapping, preset_names

USERS = '[users]\nobject = "people"\nkey = "id"\n'
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def attributes(body: str) -> str:
    """A users mapping of `body`'s attributes, and of userName when `body` leaves it out
    (a mapping must map it, RFC 7643 §4.1.1)."""
    login = "" if "userName" in body else 'userName = "login"\n'
    return f"{USERS}[users.attributes]\n{login}{body}\n"


def test_presets_are_listed() -> None:
    assert preset_names() == [
        "ldap-389ds",
        "ldap-active-directory",
        "ldap-openldap",
        "sql-default",
        "sql-hr-table",
    ]


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads(name: str) -> None:
    mapping = load_mapping(name)
    assert mapping.source.endswith(f"{name}.toml")
    assert mapping.users.spec is mapping.backend.users


def test_default_preset_builds_the_backend_schema() -> None:
    mapping = load_mapping("sql-default")
    users = mapping.backend.users
    assert (users.object, users.key, users.created, users.modified, users.version) == (
        "users",
        "id",
        "created_at",
        "modified_at",
        "version",
    )
    assert users.unique == ("user_name",)
    assert users.display == "display_name"
    assert users.field_named("manager_id") == Field("manager_id", reference=Kind.USERS)
    assert users.field_named("email") == Field("email")
    assert "id" not in {field.name for field in users.fields}
    assert mapping.backend.memberships == MembershipSpec(
        object="memberships", group="group_id", member="user_id"
    )
    assert mapping.groups is not None
    assert mapping.for_kind(Kind.GROUPS) is mapping.groups
    assert mapping.backend.groups is mapping.groups.spec


def test_hr_preset_has_constants_and_no_groups() -> None:
    mapping = load_mapping("sql-hr-table")
    assert mapping.backend.users.constants == {"record_source": "SCIM"}
    assert mapping.groups is None
    assert mapping.backend.memberships is None
    with pytest.raises(LookupError):
        mapping.for_kind(Kind.GROUPS)


def test_nested_tables_are_path_prefixes(load: Callable[[str], Mapping]) -> None:
    mapping = load(
        f'{USERS}[users.attributes]\nuserName = "login"\nname.givenName = "first"\n'
        f'[users.attributes."{ENTERPRISE}"]\nemployeeNumber = "number"\n'
        '"manager.value" = { field = "boss", reference = "users" }\n'
    )
    scim = mapping.users.to_scim({"login": "a", "first": "B", "number": "7", "boss": "3"})
    assert scim == {
        "userName": "a",
        "name": {"givenName": "B"},
        ENTERPRISE: {"employeeNumber": "7", "manager": {"value": "3"}},
    }
    assert mapping.users.spec.field_named("boss") == Field("boss", reference=Kind.USERS)


def test_membership_attribute_of_a_directory(load: Callable[[str], Mapping]) -> None:
    mapping = load(
        attributes('userName = "uid"') + '[groups]\nobject = "ou=groups"\nkey = "entryUUID"\n'
        '[groups.attributes]\ndisplayName = "cn"\n[groups.members]\nfield = "member"\n'
    )
    assert mapping.backend.memberships == MembershipSpec(field="member")


def test_multi_valued_attribute_without_split_is_a_multi_valued_field(
    load: Callable[[str], Mapping],
) -> None:
    users = load(attributes('userName = "uid"\n"emails.value" = "mail"')).users
    assert users.spec.field_named("mail") == Field("mail", multi_valued=True)


def test_attribute_of_names_the_scim_path() -> None:
    users = load_mapping("sql-default").users
    assert users.attribute_of("email") == 'emails[type eq "work"].value'
    assert users.attribute_of("nowhere") is None


def test_unknown_preset_or_missing_file() -> None:
    with pytest.raises(MappingError) as caught:
        load_mapping("no-such-preset")
    assert caught.value.problems == [
        "no-such-preset: no such file or preset (presets: ldap-389ds, ldap-active-directory, "
        "ldap-openldap, sql-default, sql-hr-table)"
    ]


# --- problems, one line each ------------------------------------------------------------


def test_toml_syntax_error_names_the_line(problems: Callable[[str], list[str]]) -> None:
    assert problems('[users]\nobject = "people"\nkey =\n') == [
        "my.toml: invalid TOML: Invalid value (at line 3, column 6)"
    ]


def test_unknown_top_level_table(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('userName = "login"') + "[roles]\n") == [
        "my.toml: roles: unknown table (expected users, groups or extensions)"
    ]


def test_missing_users(problems: Callable[[str], list[str]]) -> None:
    assert problems('[groups]\nobject = "g"\nkey = "id"\n[groups.members]\nfield = "m"\n') == [
        "my.toml: users: missing table",
        "my.toml: groups.attributes: missing",
    ]


def test_missing_object_and_key(problems: Callable[[str], list[str]]) -> None:
    assert problems('[users]\n[users.attributes]\nuserName = "login"\n') == [
        "my.toml: users.object: missing",
        "my.toml: users.key: missing",
    ]


def test_unknown_key_in_an_object_table(problems: Callable[[str], list[str]]) -> None:
    assert problems(USERS + 'table = "x"\n[users.attributes]\nuserName = "login"\n') == [
        "my.toml: users.table: unknown key "
        "(valid: object, key, created, modified, version, attributes, constants, classes, rdn, "
        "disabled_object)"
    ]


def test_unknown_scim_attribute(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('nickNam = "nick"')) == [
        "my.toml: users.attributes.nickNam: unknown SCIM attribute 'nickNam' of User "
        "(did you mean 'nickName'?)"
    ]


def test_unknown_group_attribute(problems: Callable[[str], list[str]]) -> None:
    text = attributes('userName = "login"') + (
        '[groups]\nobject = "g"\nkey = "id"\n[groups.attributes]\nuserName = "x"\n'
        '[groups.members]\nfield = "member"\n'
    )
    assert problems(text) == [
        "my.toml: groups.attributes.userName: unknown SCIM attribute 'userName' of Group"
    ]


def test_unknown_extension_attribute(problems: Callable[[str], list[str]]) -> None:
    text = attributes(f'[users.attributes."{ENTERPRISE}"]\nemployeeNum = "n"')
    assert problems(text) == [
        f"my.toml: users.attributes.{ENTERPRISE}.employeeNum: unknown SCIM attribute "
        f"'{ENTERPRISE}:employeeNum' of User (did you mean '{ENTERPRISE}:employeeNumber'?)"
    ]


@pytest.mark.parametrize("attribute", ["id", "meta.created", "groups.value"])
def test_bridge_attributes_cannot_be_mapped(
    problems: Callable[[str], list[str]], attribute: str
) -> None:
    assert problems(attributes(f'"{attribute}" = "x"')) == [
        f"my.toml: users.attributes.{attribute}: '{attribute}' is managed by the bridge "
        "and cannot be mapped"
    ]


def test_group_members_cannot_be_an_attribute(problems: Callable[[str], list[str]]) -> None:
    text = attributes('userName = "login"') + (
        '[groups]\nobject = "g"\nkey = "id"\n[groups.attributes]\nmembers = "m"\n'
        '[groups.members]\nfield = "member"\n'
    )
    assert problems(text) == [
        "my.toml: groups.attributes.members: 'members' is managed by the bridge "
        "and cannot be mapped"
    ]


def test_complex_attribute_needs_sub_attributes(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('name = "n"')) == [
        "my.toml: users.attributes.name: 'name' is complex: map its sub-attributes instead"
    ]


def test_slot_filter_must_be_a_type(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('\'emails[value co "x"].value\' = "e"')) == [
        'my.toml: users.attributes.emails[value co "x"].value: \'emails[value co "x"].value\':'
        ' only [type eq "<type>"] or [type eq "<type>" and primary eq true] may select an entry'
    ]


def test_unslotted_sub_attribute_of_a_multi_valued_attribute(
    problems: Callable[[str], list[str]],
) -> None:
    assert problems(attributes('"addresses.locality" = "city"')) == [
        "my.toml: users.attributes.addresses.locality: 'addresses.locality': select an entry "
        "to map this sub-attribute, e.g. 'addresses[type eq \"work\"].locality'"
    ]


def test_invalid_path(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes("'emails[type eq' = \"e\"")) == [
        "my.toml: users.attributes.emails[type eq: 'emails[type eq' is not a SCIM attribute "
        "path (invalid syntax at column 13)"
    ]


def test_two_rules_writing_one_field(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('userName = "login"\nnickName = "login"')) == [
        "my.toml: users.attributes.nickName: field 'login' is also written by "
        "users.attributes.userName"
    ]


def test_rule_writing_the_key(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('userName = "id"')) == [
        "my.toml: users.attributes.userName: field 'id' is the key field (users.key), which the "
        "connector writes: map this to another field, or name the table's own primary key in "
        "users.key"
    ]


def test_attribute_mapped_twice(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('name.givenName = "a"\n"NAME.givenname" = "b"')) == [
        "my.toml: users.attributes.NAME.givenname: 'NAME.givenname' is already mapped by "
        "users.attributes.name.givenName"
    ]


def test_slots_and_whole_attribute_together(problems: Callable[[str], list[str]]) -> None:
    text = attributes('\'emails[type eq "work"].value\' = "a"\n"emails.value" = "b"')
    assert problems(text) == [
        "my.toml: users.attributes.emails.value: 'emails' is mapped both as a whole "
        "(users.attributes.emails.value) and through entries selected by type"
    ]


def test_unknown_rule_key_lists_valid_ones(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('userName = { field = "login", uniq = true }')) == [
        "my.toml: users.attributes.userName.uniq: unknown key (did you mean 'unique'? "
        "valid: field, default, map, "
        "case, format, split, first, reference, unique, display, template, constant, absent, bit, "
        "bit_set, base, location, empty)"
    ]


def test_map_with_non_unique_backend_values(problems: Callable[[str], list[str]]) -> None:
    text = attributes('userType = { field = "t", map = { staff = "S", employee = "S" } }')
    assert problems(text) == [
        "my.toml: users.attributes.userType.map: backend value 'S' is given to both "
        "'staff' and 'employee'"
    ]


def test_map_of_a_boolean_takes_true_and_false(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('active = { field = "s", map = { yes = "A" } }')) == [
        'my.toml: users.attributes.active.map.yes: a boolean maps only "true" and "false"'
    ]


def test_bad_case(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('userName = { field = "login", case = "title" }')) == [
        'my.toml: users.attributes.userName.case: must be "lower" or "upper", not \'title\''
    ]


def test_bad_format(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('nickName = { field = "n", format = "%Q" }')) == [
        "my.toml: users.attributes.nickName.format: '%Q' is not a valid strftime format"
    ]


def test_format_on_a_boolean(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('active = { field = "a", format = "%Y" }')) == [
        "my.toml: users.attributes.active.format: 'active' holds no date: format applies to "
        "a dateTime attribute, or to a string attribute of an extension this file declares"
    ]


def test_bad_reference(problems: Callable[[str], list[str]]) -> None:
    text = attributes(f'"{ENTERPRISE}:manager.value" = {{ field = "m", reference = "people" }}')
    assert problems(text) == [
        f"my.toml: users.attributes.{ENTERPRISE}:manager.value.reference: "
        'must be "users" or "groups", not \'people\''
    ]


@pytest.mark.parametrize(
    "rule",
    ['"m"', '{ field = "m" }', '{ field = "m", case = "lower" }'],
    ids=["plain", "table", "other-keys"],
)
def test_a_manager_without_reference_is_refused(
    problems: Callable[[str], list[str]], rule: str
) -> None:
    path = f"{ENTERPRISE}:manager.value"
    # Stored as plain text, the id was never checked to name a user, and its user's
    # deletion left it behind; a directory's DN attribute refused every one.
    assert problems(attributes(f'"{path}" = {rule}')) == [
        f"my.toml: users.attributes.{path}: '{ENTERPRISE}:manager.value' holds the id of "
        'one of the users (RFC 7643 §4.3): give reference = "users", which stores that '
        "record's key (a row key, a DN) and checks that it names one"
    ]


def test_reference_to_groups_without_groups(problems: Callable[[str], list[str]]) -> None:
    text = attributes(f'"{ENTERPRISE}:manager.value" = {{ field = "m", reference = "groups" }}')
    assert problems(text) == [
        f"my.toml: users.attributes.{ENTERPRISE}:manager.value.reference: "
        "there is no [groups] table to refer to"
    ]


def test_split_on_a_single_valued_attribute(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('nickName = { field = "n", split = "," }')) == [
        "my.toml: users.attributes.nickName.split: 'nickName' is single-valued"
    ]


def test_default_naming_an_unknown_path(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('displayName = { field = "d", default = "{name.given}" }')) == [
        "my.toml: users.attributes.displayName.default: unknown SCIM attribute 'name.given' "
        "of User (did you mean 'name.givenName'?)"
    ]


def test_template_naming_an_unknown_path(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('displayName = { template = "{nick}" }')) == [
        "my.toml: users.attributes.displayName.template: unknown SCIM attribute 'nick' of User"
    ]


@pytest.mark.parametrize(
    ("rule", "line"),
    [
        ("{ field = 3 }", "users.attributes.nickName.field: must be a string"),
        (
            '{ field = "n", unique = "yes" }',
            "users.attributes.nickName.unique: must be true or false",
        ),
        ('{ field = "n", map = "x" }', "users.attributes.nickName.map: must be a table"),
        ("7", "users.attributes.nickName: must be a field name or a rule table"),
        (
            '{ field = "n", default = true }',
            "users.attributes.nickName.default: must be a string for "
            "'urn:ietf:params:scim:schemas:core:2.0:User:nickName'",
        ),
    ],
)
def test_wrong_toml_types(problems: Callable[[str], list[str]], rule: str, line: str) -> None:
    assert problems(attributes(f"nickName = {rule}")) == [f"my.toml: {line}"]


def test_rule_without_field_template_or_constant(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes("nickName = { unique = true }")) == [
        "my.toml: users.attributes.nickName: needs a field, a template or a constant",
        "my.toml: users.attributes.nickName.unique: needs a field",
    ]


def test_groups_need_members(problems: Callable[[str], list[str]]) -> None:
    text = attributes('userName = "login"') + (
        '[groups]\nobject = "g"\nkey = "id"\n[groups.attributes]\ndisplayName = "name"\n'
    )
    assert problems(text) == [
        "my.toml: groups.members: missing (object, group and member name a membership "
        "table; field names a member attribute of the group)"
    ]


def test_incomplete_membership_table(problems: Callable[[str], list[str]]) -> None:
    text = attributes('userName = "login"') + (
        '[groups]\nobject = "g"\nkey = "id"\n[groups.attributes]\ndisplayName = "name"\n'
        '[groups.members]\nobject = "memberships"\n'
    )
    assert problems(text) == [
        "my.toml: groups.members.group: missing",
        "my.toml: groups.members.member: missing",
    ]


def test_every_problem_is_reported_at_once(problems: Callable[[str], list[str]]) -> None:
    text = (
        '[users]\nobject = "people"\n[users.attributes]\nnickNam = "n"\n'
        'active = { field = "s", map = { true = "A", false = "A" } }\n'
        'userName = { field = "login", case = "Lower" }\n[extra]\n'
    )
    assert problems(text) == [
        "my.toml: extra: unknown table (expected users, groups or extensions)",
        "my.toml: users.key: missing",
        "my.toml: users.attributes.nickNam: unknown SCIM attribute 'nickNam' of User "
        "(did you mean 'nickName'?)",
        "my.toml: users.attributes.active.map: backend value 'A' is given to both 'true' "
        "and 'false'",
        'my.toml: users.attributes.userName.case: must be "lower" or "upper", not \'Lower\'',
    ]


def test_constant_on_a_field_an_attribute_writes(problems: Callable[[str], list[str]]) -> None:
    text = attributes('userName = "login"\nuserType = "kind"') + '[users.constants]\nkind = "E"\n'
    assert problems(text) == [
        "my.toml: users.constants.kind: field 'kind' is also written by "
        "users.attributes.userType: give it one of the two"
    ]


def test_constant_on_the_key_field(problems: Callable[[str], list[str]]) -> None:
    text = attributes('userName = "login"') + "[users.constants]\nid = 5\n"
    assert problems(text) == [
        "my.toml: users.constants.id: field 'id' is the key field (users.key), which the "
        "connector writes: map this to another field, or name the table's own primary key in "
        "users.key"
    ]


@pytest.mark.parametrize(
    ("rule", "default"),
    [
        ('userType = { field = "kind", map = { Employee = "E" }, default = "Staff" }', "'Staff'"),
        ('active = { field = "on", map = { true = "A" }, default = false }', "False"),
    ],
)
def test_default_the_map_cannot_store(
    problems: Callable[[str], list[str]], rule: str, default: str
) -> None:
    key = rule.split(" ")[0]
    (line,) = problems(attributes(f'userName = "login"\n{rule}'))
    expected = f"my.toml: users.attributes.{key}.default: {default} is not a key of map"
    assert line.startswith(expected)


def test_default_the_map_stores_in_another_case(load: Callable[[str], Mapping]) -> None:
    rule = 'userType = { field = "kind", map = { Employee = "E" }, default = "employee" }'
    mapping = load(attributes(f'userName = "login"\n{rule}'))
    assert mapping.users.spec.fields


def test_one_column_for_two_of_the_connector_s_fields(problems: Callable[[str], list[str]]) -> None:
    # created and modified are each written by the connector: one column cannot be both.
    text = (
        '[users]\nobject = "people"\nkey = "id"\ncreated = "stamp"\nmodified = "Stamp"\n'
        '[users.attributes]\nuserName = "login"\n'
    )
    assert problems(text) == [
        "my.toml: users.modified: names the column created names: give each its own"
    ]
