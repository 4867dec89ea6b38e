"""The directory presets translate both ways, and the account-state strategies hold.

No Active Directory or 389 DS runs here, so their presets are checked at the mapping
level: a SCIM user becomes the attribute values such a directory stores, and stored
values read back as the same SCIM user. OpenLDAP's preset is also run against a real
slapd in tests/connectors/ldap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from scim2_models import ScimFilter

from connectors.base import ENABLED_BY_LOCATION, BitSet, Compare, Not, Op, Or, Present
from mappings import Mapping, load_mapping


def parse_filter(text: str) -> Any:
    return ScimFilter(text).ast


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

USER: dict[str, Any] = {
    "userName": "jdoe",
    "externalId": "00u1",
    "name": {"givenName": "Jane", "familyName": "Doe"},
    "displayName": "Jane Doe",
    "title": "Engineer",
    "emails": [{"type": "work", "value": "jdoe@example.com", "primary": True}],
    "active": True,
    ENTERPRISE: {"employeeNumber": "701", "department": "R&D", "manager": {"value": "m1"}},
}


def test_active_directory_user_both_ways() -> None:
    users = load_mapping("ldap-active-directory").users
    stored = users.to_backend(USER)
    assert stored["sAMAccountName"] == "jdoe"
    assert stored["userPrincipalName"] == "jdoe@example.com"
    assert stored["employeeID"] == "00u1"
    assert stored["department"] == "R&D"
    assert stored["manager"] == "m1"  # an id here; the connector writes the manager's DN
    assert stored["userAccountControl"] == 512  # NORMAL_ACCOUNT, enabled
    back = users.to_scim(stored)
    assert back["userName"] == "jdoe"
    assert back["active"] is True
    assert back[ENTERPRISE]["manager"] == {"value": "m1"}
    assert back["emails"] == [{"type": "work", "value": "jdoe@example.com"}]


def test_active_directory_disable_keeps_the_other_flags() -> None:
    users = load_mapping("ldap-active-directory").users
    # 0x10200: NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD, set by an administrator.
    current = {"sAMAccountName": "jdoe", "userAccountControl": "66048"}
    disabled = users.to_backend({**USER, "active": False}, current=current)
    assert disabled["userAccountControl"] == 66048 | 2
    enabled = users.to_backend(USER, current={**current, "userAccountControl": "66050"})
    assert enabled["userAccountControl"] == 66048
    assert users.to_scim({"userAccountControl": "66050"})["active"] is False
    assert users.to_scim({"userAccountControl": "512"})["active"] is True


def test_active_directory_patch_without_active_keeps_flags() -> None:
    users = load_mapping("ldap-active-directory").users
    current = {"userAccountControl": "66050"}
    without = {key: value for key, value in USER.items() if key != "active"}
    assert (
        users.to_backend(without, current=current, defaults=False)["userAccountControl"] == "66050"
    )


def test_active_directory_active_filter_is_a_bitwise_match() -> None:
    users = load_mapping("ldap-active-directory").users
    disabled = BitSet("userAccountControl", 2)
    assert users.condition(parse_filter("active eq false")) == disabled
    assert users.condition(parse_filter("active eq true")) == Not(disabled)
    assert users.condition(parse_filter("active ne true")) == disabled


def test_389ds_account_lock_both_ways() -> None:
    users = load_mapping("ldap-389ds").users
    assert users.to_backend({**USER, "active": False})["nsAccountLock"] == "TRUE"
    assert users.to_backend(USER)["nsAccountLock"] == "FALSE"
    assert users.to_scim({"uid": "jdoe"})["active"] is True  # no lock attribute at all
    assert users.to_scim({"nsAccountLock": "true"})["active"] is False
    assert users.to_scim({"nsAccountLock": "False"})["active"] is True
    stored = users.to_backend(USER)
    assert stored["uid"] == "jdoe"
    assert stored["departmentNumber"] == "R&D"


def test_389ds_active_filter_counts_a_missing_lock_as_active() -> None:
    users = load_mapping("ldap-389ds").users
    active = Or((Not(Present("nsAccountLock")), Compare("nsAccountLock", Op.EQ, "FALSE")))
    assert users.condition(parse_filter("active eq true")) == active
    assert users.condition(parse_filter("active eq false")) == Not(active)
    assert users.condition(parse_filter("active pr")).value is True  # type: ignore[union-attr]


def test_openldap_ppolicy_lock_both_ways() -> None:
    users = load_mapping("ldap-openldap").users
    assert users.to_backend({**USER, "active": False})["pwdAccountLockedTime"] == "000001010000Z"
    assert users.to_backend(USER)["pwdAccountLockedTime"] is None  # active: no lock
    assert users.to_scim({"uid": "jdoe"})["active"] is True
    assert users.to_scim({"pwdAccountLockedTime": "000001010000Z"})["active"] is False
    # A lockout by failed binds stores the time of the lock: the account is not active.
    assert users.to_scim({"pwdAccountLockedTime": "20261122101500Z"})["active"] is False


@pytest.mark.parametrize("preset", ["ldap-openldap", "ldap-active-directory", "ldap-389ds"])
def test_directory_presets_name_classes_rdn_and_members(preset: str) -> None:
    mapping = load_mapping(preset)
    for spec in (mapping.backend.users, mapping.backend.groups):
        assert spec is not None
        assert spec.directory is not None
        assert spec.directory.classes
        assert spec.directory.naming_field in {field.name for field in spec.fields}
    assert mapping.backend.memberships is not None
    assert mapping.backend.memberships.field in ("member", "uniqueMember")


LOCATION = """
[users]
object = "ou=people"
key = "entryUUID"
classes = ["inetOrgPerson"]
rdn = "uid={userName}"
disabled_object = "ou=disabled"
[users.attributes]
userName = "uid"
active = { location = true }
"""


def test_location_strategy_is_a_virtual_field(load: Callable[[str], Mapping]) -> None:
    users = load(LOCATION).users
    assert users.spec.directory is not None
    assert users.spec.directory.disabled_object == "ou=disabled"
    assert users.to_backend({"userName": "a", "active": False})[ENABLED_BY_LOCATION] is False
    assert users.to_scim({"uid": "a", ENABLED_BY_LOCATION: True})["active"] is True
    condition = users.condition(parse_filter("active eq false"))
    assert condition == Compare(ENABLED_BY_LOCATION, Op.EQ, False)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            "active = { location = true }",
            "my.toml: users.attributes.active.location: needs disabled_object in the table: "
            "where disabled entries go",
        ),
        (
            'active = { field = "uac", bit = 2, map = { true = "1" } }',
            "my.toml: users.attributes.active.bit: excludes map",
        ),
        (
            'title = { field = "t", bit = 2 }',
            "my.toml: users.attributes.title.bit: applies only to a boolean, "
            "not 'urn:ietf:params:scim:schemas:core:2.0:User:title'",
        ),
        (
            'active = { field = "lock", absent = true }',
            "my.toml: users.attributes.active.absent: "
            "needs a map giving the stored value it is not",
        ),
        (
            'active = { field = "uac", base = 512 }',
            "my.toml: users.attributes.active.base: applies only with bit",
        ),
    ],
)
def test_strategy_mistakes_are_named(
    problems: Callable[[str], list[str]], rules: str, expected: str
) -> None:
    text = f'[users]\nobject = "u"\nkey = "k"\n[users.attributes]\nuserName = "uid"\n{rules}\n'
    assert problems(text) == [expected]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('classes = ["person"]', "my.toml: users.rdn: missing (a directory mapping names both)"),
        (
            'classes = ["person"]\nrdn = "uid=userName"',
            "my.toml: users.rdn: must be ATTRIBUTE={scim.path}, e.g. uid={userName}, "
            "not 'uid=userName'",
        ),
        (
            'classes = ["person"]\nrdn = "cn={displayName}"',
            "my.toml: users.rdn: 'displayName' must be a single-valued attribute mapped to a field",
        ),
        (
            'classes = []\nrdn = "uid={userName}"',
            "my.toml: users.classes: must be a list of object class names",
        ),
    ],
)
def test_directory_object_mistakes_are_named(
    problems: Callable[[str], list[str]], table: str, expected: str
) -> None:
    text = f'[users]\nobject = "u"\nkey = "k"\n{table}\n[users.attributes]\nuserName = "uid"\n'
    assert problems(text) == [expected]
