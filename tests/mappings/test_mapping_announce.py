"""announced(): what discovery may say the service supports (RFC 7643 §7)."""

from __future__ import annotations

import pathlib

from mappings import AnnouncedAttribute, load_mapping

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
EMPLOYMENT = "urn:scim-bridge:schemas:extension:employment:2.0:User"


def test_slots_simple_complex_and_computed(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "my.toml"
    path.write_text(
        '[users]\nobject = "p"\nkey = "id"\n[users.attributes]\n'
        'userName = { field = "login", unique = true }\n'
        'name.givenName = "first"\nname.familyName = "last"\n'
        'name.formatted = { template = "{name.givenName} {name.familyName}" }\n'
        'displayName = { template = "{name.givenName}" }\n'
        'userType = { constant = "Employee" }\n'
        '\'emails[type eq "work" and primary eq true].value\' = "work_mail"\n'
        '\'emails[type eq "home"].value\' = "home_mail"\n'
        '\'emails[type eq "home"].display\' = "home_label"\n'
        'phoneNumbers = { field = "phones", split = "," }\n'
    )
    announced = load_mapping(path).users.announced()
    assert announced == {
        CORE: {
            "userName": AnnouncedAttribute(None, unique=frozenset({""})),
            "name": AnnouncedAttribute(
                frozenset({"givenName", "familyName", "formatted"}),
                read_only_sub_attributes=frozenset({"formatted"}),
            ),
            "displayName": AnnouncedAttribute(None, read_only=True),
            "userType": AnnouncedAttribute(None, read_only=True),
            "emails": AnnouncedAttribute(
                frozenset({"value", "display", "type", "primary"}),
                canonical_values={"type": ("work", "home")},
            ),
            "phoneNumbers": AnnouncedAttribute(frozenset({"value"})),
        }
    }


def test_default_preset_announces_the_enterprise_and_employment_extensions() -> None:
    mapping = load_mapping("sql-default")
    announced = mapping.users.announced()
    assert set(announced) == {CORE, ENTERPRISE, EMPLOYMENT}
    assert announced[EMPLOYMENT] == {"startDate": AnnouncedAttribute(None)}
    assert announced[ENTERPRISE]["manager"] == AnnouncedAttribute(frozenset({"value"}))
    assert announced[CORE]["addresses"] == AnnouncedAttribute(
        frozenset({"locality", "type"}), canonical_values={"type": ("work",)}
    )
    assert "nickName" in announced[CORE]
    assert "password" not in announced[CORE]
    assert mapping.groups is not None
    assert mapping.groups.announced() == {
        "urn:ietf:params:scim:schemas:core:2.0:Group": {
            "displayName": AnnouncedAttribute(None),
            "externalId": AnnouncedAttribute(None),
        }
    }
