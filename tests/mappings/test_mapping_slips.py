"""Mapping mistakes that once loaded without a word, each now refused at start-up with a
line naming the file and the key (or, for a likely typo that may be meant, announced)."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

from bridge.config import load_config
from bridge.resources import policy_problems
from mappings import Mapping, TranslationError, load_mapping, preset_names

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
HR = "urn:example:params:scim:schemas:extension:hr:2.0:User"
USERS = '[users]\nobject = "people"\nkey = "id"\n[users.attributes]\n'


def attributes(body: str) -> str:
    return f'{USERS}userName = "login"\n{body}\n'


# --- 1, 2: userName is required and unique (RFC 7643 §4.1.1) -----------------------------


def test_a_mapping_without_user_name_is_refused(problems: Callable[[str], list[str]]) -> None:
    text = f'{USERS}"name.givenName" = "first"\n"name.familyName" = "last"\n'
    assert problems(text) == [
        "my.toml: users.attributes.userName: missing: RFC 7643 §4.1.1 makes userName "
        'required (userName = "login")'
    ]


def test_user_name_computed_and_stored_nowhere_is_refused(
    problems: Callable[[str], list[str]],
) -> None:
    text = f'{USERS}"name.givenName" = "first"\nuserName = {{ template = "{{name.givenName}}" }}\n'
    assert problems(text) == [
        "my.toml: users.attributes.userName: needs a field: userName is stored, and unique "
        "(RFC 7643 §4.1.1)"
    ]


def test_user_name_is_unique_without_saying_so(load: Callable[[str], Mapping]) -> None:
    users = load(attributes("title = 't'")).users
    assert users.spec.unique == ("login",)
    assert users.announced()["urn:ietf:params:scim:schemas:core:2.0:User"]["userName"].unique


def test_user_name_cannot_be_declared_not_unique(problems: Callable[[str], list[str]]) -> None:
    text = f'{USERS}userName = {{ field = "login", unique = false }}\n'
    assert problems(text) == [
        "my.toml: users.attributes.userName.unique: userName is unique (RFC 7643 §4.1.1): remove it"
    ]


# --- 3: a disabling policy needs an active rule that stores false -----------------------


def _policy(tmp_path: pathlib.Path, active: str, policy: str) -> list[str]:
    (tmp_path / "m.toml").write_text(
        '[users]\nobject = "people"\nkey = "id"\n[users.attributes]\n'
        f'userName = "login"\nactive = {active}\n'
    )
    config = tmp_path / "config.toml"
    config.write_text(
        'mapping = "m.toml"\n[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
        f'[connector]\ntype = "sql"\nurl = "sqlite+aiosqlite:///{tmp_path}/x.db"\n{policy}'
    )
    settings = load_config(config)
    lines = policy_problems(settings, load_mapping(tmp_path / "m.toml"))
    return [line.replace(str(tmp_path), "DIR") for line in lines]


ONLY_TRUE = '{ field = "status", map = { true = "A" }, default = true }'


def test_disable_policies_need_an_active_rule_that_stores_false(tmp_path: pathlib.Path) -> None:
    assert _policy(tmp_path, ONLY_TRUE, '[users]\non_delete = "disable"\n') == [
        'DIR/config.toml: users.on_delete: "disable" needs the active rule of the mapping '
        "DIR/m.toml to store false, which its map cannot",
        'DIR/config.toml: users.on_deactivate: "disable" (the default) needs the active rule '
        "of the mapping DIR/m.toml to store false, which its map cannot",
    ]


def test_deleting_on_deactivation_shows_the_account_disabled(tmp_path: pathlib.Path) -> None:
    assert _policy(tmp_path, ONLY_TRUE, '[users]\non_deactivate = "delete"\n') == [
        'DIR/config.toml: users.on_deactivate: "delete" needs the active rule of the mapping '
        "DIR/m.toml to store false, which its map cannot"
    ]


def test_enabling_again_needs_true(tmp_path: pathlib.Path) -> None:
    only_false = '{ field = "status", map = { false = "T" } }'
    assert _policy(tmp_path, only_false, '[users]\non_deactivate = "disable"\n') == [
        'DIR/config.toml: users.on_deactivate: "disable" needs the active rule of the mapping '
        "DIR/m.toml to store true, which its map cannot"
    ]


@pytest.mark.parametrize(
    ("active", "policy"),
    [
        (ONLY_TRUE, '[users]\non_deactivate = "refuse"\n'),
        ('{ field = "status", map = { true = "A", false = "T" } }', ""),
        # ppolicy's lock: true is stored as no value at all.
        ('{ field = "lock", map = { false = "000001010000Z" }, absent = true }', ""),
        ('{ field = "flags", bit = 2, bit_set = false, base = 512 }', ""),
    ],
)
def test_policies_the_active_rule_can_carry_out(
    tmp_path: pathlib.Path, active: str, policy: str
) -> None:
    assert _policy(tmp_path, active, policy) == []


# --- 4, 6, 7: transforms on attributes they cannot apply to ------------------------------


def test_absent_on_a_string_is_refused(problems: Callable[[str], list[str]]) -> None:
    text = attributes('nickName = { field = "nick_name", absent = true }')
    assert problems(text) == [
        "my.toml: users.attributes.nickName.absent: applies only to a boolean, not "
        "'urn:ietf:params:scim:schemas:core:2.0:User:nickName'"
    ]


def test_reference_on_a_plain_string_is_refused(problems: Callable[[str], list[str]]) -> None:
    text = attributes('nickName = { field = "nick_name", reference = "users" }')
    assert problems(text) == [
        "my.toml: users.attributes.nickName.reference: "
        "'urn:ietf:params:scim:schemas:core:2.0:User:nickName' is no reference to a resource "
        "(manager.value of the enterprise extension is, RFC 7643 §4.3)"
    ]


def test_a_manager_is_a_user(problems: Callable[[str], list[str]]) -> None:
    text = (
        attributes("")
        + f'[users.attributes."{ENTERPRISE}"]\n'
        + '"manager.value" = { field = "boss", reference = "groups" }\n'
        + '[groups]\nobject = "teams"\nkey = "id"\n[groups.attributes]\ndisplayName = "name"\n'
        + '[groups.members]\nobject = "tm"\ngroup = "team"\nmember = "person"\n'
    )
    assert problems(text) == [
        f"my.toml: users.attributes.{ENTERPRISE}.manager.value.reference: "
        f"'{ENTERPRISE}:manager.value' refers to users (RFC 7643 §4.3), not groups"
    ]


@pytest.mark.parametrize("computed", ['template = "{userName}!"', 'constant = "x"'])
def test_a_default_beside_a_computed_value_is_refused(
    problems: Callable[[str], list[str]], computed: str
) -> None:
    text = attributes(f'nickName = {{ {computed}, default = "n" }}')
    what = computed.split(" ")[0]
    assert problems(text) == [
        f"my.toml: users.attributes.nickName.default: never applies: {what} computes the value"
    ]


# --- 5: templates that never produce a value ---------------------------------------------


@pytest.mark.parametrize(
    ("rule", "key"),
    [
        ('nickName = { template = "{nickName}x" }', "template"),
        ('nickName = { field = "n", default = "{nickName} {userName}" }', "default"),
    ],
)
def test_a_template_naming_itself_is_refused(
    problems: Callable[[str], list[str]], rule: str, key: str
) -> None:
    text = attributes(rule)
    template = rule.split('"')[-2]
    assert problems(text) == [
        f"my.toml: users.attributes.nickName.{key}: '{template}' names the attribute it "
        "computes: it never has a value"
    ]


@pytest.mark.parametrize(
    ("rule", "key"),
    [
        ('displayName = { template = "{name.givenName} {name.familyName}" }', "template"),
        (
            'displayName = { field = "d", default = "{name.givenName} {name.familyName}" }',
            "default",
        ),
    ],
)
def test_a_template_naming_an_attribute_stored_nowhere_is_refused(
    problems: Callable[[str], list[str]], rule: str, key: str
) -> None:
    text = attributes(f'"name.givenName" = "first"\n{rule}')
    assert problems(text) == [
        f"my.toml: users.attributes.displayName.{key}: '{{name.givenName}} "
        "{name.familyName}' names 'name.familyName', which the mapping does not store: "
        "map it to a field"
    ]


def test_a_template_may_name_an_entry_and_a_stored_template(
    load: Callable[[str], Mapping],
) -> None:
    users = load(
        attributes(
            '\'emails[type eq "work" and primary eq true].value\' = "mail"\n'
            '"name.formatted" = { field = "cn", template = "{userName}" }\n'
            'nickName = { template = "{name.formatted} <{emails[type eq \\"work\\"].value}>" }'
        )
    ).users
    values = users.to_backend({"userName": "ann", "emails": [{"type": "work", "value": "a@x"}]})
    assert users.to_scim(values)["nickName"] == "ann <a@x>"


# --- 8: an extension's name is none of User's ---------------------------------------------


@pytest.mark.parametrize("name", ["userName", "displayName", "x509Certificates", "User", "TITLE"])
def test_an_extension_named_as_a_user_attribute_is_refused(
    problems: Callable[[str], list[str]], name: str
) -> None:
    text = attributes("") + f'[extensions."{HR}"]\nname = "{name}"\n'
    text += f'[extensions."{HR}".attributes]\nx = "string"\n'
    assert problems(text) == [
        f"my.toml: extensions.\"{HR}\".name: '{name}' is the name of an attribute or schema "
        "of User: choose another"
    ]


# --- 9: a slot of a type RFC 7643 §4.1.2 does not list ------------------------------------


def test_a_slot_type_rfc_7643_does_not_list_is_a_slip(load: Callable[[str], Mapping]) -> None:
    mapping = load(attributes('\'emails[type eq "wrok"].value\' = "email"'))
    assert [line.split(": ", 1)[1] for line in mapping.slips] == [
        'users.attributes.emails[type eq "wrok"].value: type "wrok" is not one RFC 7643 '
        "§4.1.2 lists for emails (work, home, other): entries of those types are not "
        "stored in it"
    ]
    assert mapping.slips[0].startswith(f"{mapping.source}: ")


def test_listed_slot_types_are_no_slip(load: Callable[[str], Mapping]) -> None:
    mapping = load(
        attributes(
            '\'emails[type eq "Work"].value\' = "email"\n'
            '\'phoneNumbers[type eq "mobile"].value\' = "mobile"\n'
            '\'ims[type eq "xmpp"].value\' = "jabber"\n'
            '\'addresses[type eq "home"].locality\' = "city"\n'
            '\'roles[type eq "anything"].value\' = "role"'
        )
    )
    assert mapping.slips == ()


# --- 10: an extension declared and never mapped ------------------------------------------


def test_an_extension_declared_and_never_mapped_is_a_slip(load: Callable[[str], Mapping]) -> None:
    declared = f'[extensions."{HR}"]\nname = "HR"\n[extensions."{HR}".attributes]\nx = "string"\n'
    # Its attribute written under a misspelt URN is refused by itself; one left out is not.
    mapping = load(attributes("") + declared)
    assert [line.split(": ", 1)[1] for line in mapping.slips] == [
        f'extensions."{HR}": declared, but no attribute of it is mapped under '
        "[users.attributes]: it is announced to clients, and what they send in it is dropped"
    ]
    used = load(attributes(f'"{HR}:x" = "x"') + declared)
    assert used.slips == ()


@pytest.mark.parametrize("preset", preset_names())
def test_presets_have_no_slips(preset: str) -> None:
    assert load_mapping(preset).slips == ()


# --- 10: sorting by a date held as text ---------------------------------------------------

EMPLOYMENT = "urn:scim-bridge:schemas:extension:employment:2.0:User"


def test_a_date_held_in_a_format_that_does_not_sort_is_not_sortable() -> None:
    users = load_mapping("sql-hr-table").users
    with pytest.raises(TranslationError) as caught:
        users.sort(f"{EMPLOYMENT}:startDate", descending=False)
    assert str(caught.value) == (
        f"'{EMPLOYMENT}:startDate' is held as text in the format '%d.%m.%Y', which does not "
        "sort by date"
    )


def test_a_date_held_as_iso_8601_text_sorts(load: Callable[[str], Mapping]) -> None:
    text = attributes("") + f'[users.attributes."{HR}"]\n'
    text += 'start = { field = "hired", format = "%Y-%m-%d" }\n'
    text += f'[extensions."{HR}".attributes]\nstart = "dateTime"\n'
    assert load(text).users.sort(f"{HR}:start", descending=False).field == "hired"
