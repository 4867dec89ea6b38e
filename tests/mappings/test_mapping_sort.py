"""sortBy to a backend field, with the attribute's case sensitivity."""

from __future__ import annotations

import pathlib

import pytest

from connectors.base import Sort
from mappings import ResourceMapping, TranslationError, load_mapping

MAPPING = """
[users]
object = "people"
key = "id"
created = "created_at"

[users.attributes]
userName = "login"
externalId = "ext"
displayName = { template = "{userName}" }
userType = { constant = "Employee" }
'emails[type eq "home"].value' = "home_mail"
'emails[type eq "work" and primary eq true].value' = "work_mail"
'addresses[type eq "work"].locality' = "city"
phoneNumbers = { field = "phones", split = "," }
"""


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> ResourceMapping:
    path: pathlib.Path = tmp_path_factory.mktemp("mapping") / "my.toml"
    path.write_text(MAPPING)
    return load_mapping(path).users


@pytest.mark.parametrize(
    ("attribute", "descending", "expected"),
    [
        ("userName", False, Sort("login")),
        ("USERNAME", True, Sort("login", descending=True)),
        ("urn:ietf:params:scim:schemas:core:2.0:User:userName", False, Sort("login")),
        ("externalId", False, Sort("ext", case_exact=True)),
        ("id", True, Sort("id", descending=True, case_exact=True)),
        ("meta.created", False, Sort("created_at")),
        # A multi-valued attribute sorts by its primary value: the slot pinned primary.
        ("emails", False, Sort("work_mail")),
        ("emails.value", False, Sort("work_mail")),
        ("addresses.locality", False, Sort("city")),
    ],
)
def test_sortable(users: ResourceMapping, attribute: str, descending: bool, expected: Sort) -> None:
    assert users.sort(attribute, descending=descending) == expected


@pytest.mark.parametrize(
    "attribute",
    [
        "nickName",  # not mapped
        "displayName",  # computed by a template
        "userType",  # a constant
        "phoneNumbers",  # several values in one field
        "meta.lastModified",  # no modified field configured
        "name",  # complex, no value
        'emails[type eq "work"]',  # not an attribute path
        "emails[",  # not a path at all
    ],
)
def test_not_sortable(users: ResourceMapping, attribute: str) -> None:
    with pytest.raises(TranslationError) as caught:
        users.sort(attribute, descending=False)
    assert caught.value.attribute == attribute
    assert str(caught.value) == f"'{attribute}' cannot be used to sort"


def test_default_preset_sorts_groups_by_display_name() -> None:
    groups = load_mapping("sql-default").groups
    assert groups is not None
    assert groups.sort("displayName", descending=False) == Sort("display_name")


def test_a_mapped_boolean_sorts_false_first() -> None:
    # RFC 7644 §3.4.2.3: by the attribute's value, not the stored "A" and "T".
    users = load_mapping("sql-default").users
    assert users.sort("active", descending=True) == Sort(
        "status", descending=True, ranks=(("A", 1), ("T", 0))
    )


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        # "FALSE" is active (true), "TRUE" locked; no value is active, another value locked.
        (
            "ldap-389ds",
            Sort(
                "nsAccountLock", ranks=(("FALSE", 1), ("TRUE", 0)), absent_rank=1, unlisted_rank=0
            ),
        ),
        # A permanent lock time is inactive; no lock time active; a lockout's own time too.
        (
            "ldap-openldap",
            Sort(
                "pwdAccountLockedTime",
                ranks=(("000001010000Z", 0),),
                absent_rank=1,
                unlisted_rank=0,
            ),
        ),
    ],
)
def test_a_lock_attribute_sorts_by_the_state_it_reads_as(preset: str, expected: Sort) -> None:
    """`absent = true`: no stored value reads as active and a value the map does not list
    as locked (Rule.decode_one); they rank as those values, not as no value."""
    assert load_mapping(preset).users.sort("active", descending=False) == expected


MAPPED = """
[users]
object = "people"
key = "id"

[users.attributes]
userName = "login"
userType = { field = "kind", map = { staff = "S", Contractor = "C", intern = "I", Staff = "X" } }
"""


def test_a_mapped_string_sorts_by_its_scim_value_without_case(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "mapped.toml"
    path.write_text(MAPPED)
    users = load_mapping(path).users
    # contractor < intern < staff; "staff" and "Staff" compare equal and share a rank.
    assert users.sort("userType", descending=False).ranks == (
        ("S", 2),
        ("C", 0),
        ("I", 1),
        ("X", 2),
    )
