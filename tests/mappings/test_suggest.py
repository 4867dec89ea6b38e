"""The spelling an admin most likely meant, offered beside a name a file misspells."""

from __future__ import annotations

import pytest
from scim2_models import EnterpriseUser, Group, User

from connectors.spelling import closest
from mappings.paths import BRIDGE_ATTRIBUTES
from mappings.suggest import attribute_paths, closest_path, unknown_key

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER_PATHS = attribute_paths(User[EnterpriseUser], BRIDGE_ATTRIBUTES)


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("name.givenNme", "name.givenName"),
        ("nme.givenName", "name.givenName"),
        ("NAME.GIVENNME", "name.givenName"),  # SCIM names are case-insensitive
        ("emails.valeu", "emails.value"),
        ("phoneNumber", "phoneNumbers"),
        ("usrName", "userName"),
        (f"{ENTERPRISE}:employeNumber", f"{ENTERPRISE}:employeeNumber"),
        (f"{ENTERPRISE}:manager.vale", f"{ENTERPRISE}:manager.value"),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:Usr:department",
            f"{ENTERPRISE}:department",
        ),
        # A sub-attribute's or an extension's own name, written bare.
        ("givenName", "name.givenName"),
        ("department", f"{ENTERPRISE}:department"),
        # A directory's or an HR table's word for it.
        ("sn", "name.familyName"),
        ("mail", "emails"),
        ("dept", f"{ENTERPRISE}:department"),
    ],
)
def test_the_path_meant_is_offered(written: str, meant: str) -> None:
    assert closest_path(written, USER_PATHS) == meant


@pytest.mark.parametrize(
    "written",
    [
        f"{ENTERPRISE}:foo",  # the long shared URN alone makes no sibling near
        "emails.x",
        "favouriteColour",
        "meta.created",  # the bridge's own attributes are never offered
        "grups",
    ],
)
def test_nothing_is_offered_when_nothing_is_near(written: str) -> None:
    assert closest_path(written, USER_PATHS) is None


def test_a_group_is_offered_its_own_attributes_only() -> None:
    group_paths = attribute_paths(Group, BRIDGE_ATTRIBUTES)
    assert closest_path("displayNme", group_paths) == "displayName"
    assert closest_path("userName", group_paths) is None
    assert not [path for path in group_paths if path.startswith("members")]


def test_a_key_is_offered_before_the_list_of_valid_ones() -> None:
    assert closest("evn", ["env", "sha256"]) == "env"
    assert unknown_key("refrence", ["field", "reference"]) == (
        "unknown key (did you mean 'reference'? valid: field, reference)"
    )
    assert unknown_key("colour", ["field", "reference"]) == (
        "unknown key (valid: field, reference)"
    )
