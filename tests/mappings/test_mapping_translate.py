"""to_backend and to_scim: slots, templates, defaults, and every transform, both ways."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from mappings import ResourceMapping, TranslationError, load_mapping

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
HR = "urn:example:params:scim:schemas:extension:hr:2.0:User"

MAPPING = f"""
[users]
object = "people"
key = "id"

[users.attributes]
userName = {{ field = "login", case = "lower", unique = true }}
name.givenName = "first"
name.familyName = "last"
displayName = {{ field = "display", default = "{{name.givenName}} {{name.familyName}}" }}
"name.formatted" = {{ template = "{{name.givenName}}  {{name.familyName}}" }}
userType = {{ constant = "Employee" }}
active = {{ field = "status", map = {{ true = "A", false = "T" }}, default = true }}
'emails[type eq "work" and primary eq true].value' = "work_mail"
'emails[type eq "home"].value' = "home_mail"
'addresses[type eq "work"].locality' = "city"
'addresses[type eq "work"].postalCode' = "zip"
phoneNumbers = {{ field = "phones", split = "," }}

[users.attributes."{ENTERPRISE}"]
"manager.value" = {{ field = "boss", reference = "users" }}

# A string attribute of an extension of our own, holding an ISO 8601 date, stored as
# text in the backend's format.
[users.attributes."{HR}"]
since = {{ field = "since", format = "%d.%m.%Y" }}

[extensions."{HR}".attributes]
since = "string"
"""

EMPTY = {
    "login": None,
    "first": None,
    "last": None,
    "display": None,
    "status": "A",
    "since": None,
    "work_mail": None,
    "home_mail": None,
    "city": None,
    "zip": None,
    "phones": None,
    "boss": None,
}


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> ResourceMapping:
    path: pathlib.Path = tmp_path_factory.mktemp("mapping") / "my.toml"
    path.write_text(MAPPING)
    return load_mapping(path).users


FULL: dict[str, Any] = {
    "userName": "BJensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "displayName": "Babs",
    "active": False,
    "emails": [
        {"value": "bj@home.example.com", "type": "home"},
        {"value": "bj@example.com", "type": "work", "primary": True},
    ],
    "addresses": [{"type": "work", "locality": "Paris", "postalCode": "75001"}],
    "phoneNumbers": [{"value": "+1 555"}, {"value": "+1 556"}],
    ENTERPRISE: {"manager": {"value": "42"}},
    HR: {"since": "2021-03-15T00:00:00+00:00"},
}

STORED = {
    "login": "bjensen",
    "first": "Barbara",
    "last": "Jensen",
    "display": "Babs",
    "status": "T",
    "since": "15.03.2021",
    "work_mail": "bj@example.com",
    "home_mail": "bj@home.example.com",
    "city": "Paris",
    "zip": "75001",
    "phones": "+1 555,+1 556",
    "boss": "42",
}


def test_to_backend_writes_every_stored_field(users: ResourceMapping) -> None:
    assert users.to_backend(FULL) == STORED


def test_to_scim_reverses_every_transform(users: ResourceMapping) -> None:
    assert users.to_scim(STORED) == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen"},
        "displayName": "Babs",
        "active": False,
        "emails": [
            {"type": "work", "primary": True, "value": "bj@example.com"},
            {"type": "home", "value": "bj@home.example.com"},
        ],
        "addresses": [{"type": "work", "locality": "Paris", "postalCode": "75001"}],
        "phoneNumbers": [{"value": "+1 555"}, {"value": "+1 556"}],
        ENTERPRISE: {"manager": {"value": "42"}},
        HR: {"since": "2021-03-15"},
        "userType": "Employee",
    }


def test_round_trip_is_stable(users: ResourceMapping) -> None:
    assert users.to_backend(users.to_scim(STORED)) == STORED


def test_absent_attributes_clear_and_defaults_apply_on_create(users: ResourceMapping) -> None:
    assert users.to_backend({}) == EMPTY


def test_default_template_on_create(users: ResourceMapping) -> None:
    values = users.to_backend({"name": {"givenName": "Barbara", "familyName": "Jensen"}})
    assert values["display"] == "Barbara Jensen"


def test_template_collapses_missing_parts(users: ResourceMapping) -> None:
    assert users.to_backend({"name": {"familyName": "Jensen"}})["display"] == "Jensen"
    assert users.to_scim({"first": "Barbara"})["name"] == {
        "givenName": "Barbara",
        "formatted": "Barbara",
    }


def test_replace_keeps_current_value_of_a_defaulted_field(users: ResourceMapping) -> None:
    current = {"display": "Babs", "status": "T", "first": "Barbara"}
    values = users.to_backend({"name": {"givenName": "B"}}, current=current)
    assert (values["display"], values["status"], values["first"]) == ("Babs", "T", "B")


def test_replace_applies_the_default_when_current_is_empty(users: ResourceMapping) -> None:
    values = users.to_backend({"name": {"givenName": "B"}}, current={"display": None})
    assert (values["display"], values["status"]) == ("B", "A")


def test_replace_derives_a_templated_default_again_when_it_was_derived(
    users: ResourceMapping,
) -> None:
    previous = {"name": {"givenName": "Barbara", "familyName": "Jensen"}}
    current = {"display": "Barbara Jensen", "first": "Barbara", "last": "Jensen"}
    renamed = {"name": {"givenName": "Babs", "familyName": "Smith"}}
    values = users.to_backend(renamed, current=current, previous=previous)
    assert values["display"] == "Babs Smith"


def test_replace_keeps_a_defaulted_value_a_client_set(users: ResourceMapping) -> None:
    previous = {"name": {"givenName": "Barbara"}, "displayName": "Babs"}
    current = {"display": "Babs", "first": "Barbara"}
    values = users.to_backend({"name": {"givenName": "B"}}, current=current, previous=previous)
    assert values["display"] == "Babs"


def test_names_match_case_insensitively(users: ResourceMapping) -> None:
    values = users.to_backend(
        {
            "USERNAME": "X",
            "Name": {"GIVENNAME": "Y"},
            "Emails": [{"VALUE": "z@example.com", "Type": "WORK"}],
            ENTERPRISE.lower(): {"Manager": {"Value": "7"}},
        }
    )
    assert (values["login"], values["first"], values["work_mail"], values["boss"]) == (
        "x",
        "Y",
        "z@example.com",
        "7",
    )


def test_untyped_entries_fill_free_slots_in_mapping_order(users: ResourceMapping) -> None:
    values = users.to_backend(
        {
            "emails": [
                {"value": "a@example.com"},
                {"value": "h@example.com", "type": "home"},
                {"value": "b@example.com"},
                {"value": "o@example.com", "type": "other"},
            ]
        }
    )
    assert (values["work_mail"], values["home_mail"]) == ("a@example.com", "h@example.com")


def test_primary_entry_wins_a_slot(users: ResourceMapping) -> None:
    values = users.to_backend(
        {
            "emails": [
                {"value": "second@example.com", "type": "work"},
                {"value": "first@example.com", "type": "work", "primary": True},
            ]
        }
    )
    assert values["work_mail"] == "first@example.com"


def test_value_outside_the_map_is_refused(users: ResourceMapping) -> None:
    with pytest.raises(TranslationError) as caught:
        users.to_backend({"active": "maybe"})
    assert caught.value.attribute == "active"
    assert str(caught.value) == "value 'maybe' of 'active' is not one the backend can store"


def test_backend_value_outside_the_map_is_omitted(users: ResourceMapping) -> None:
    assert "active" not in users.to_scim({"status": "L"})


def test_bad_date_is_refused(users: ResourceMapping) -> None:
    with pytest.raises(TranslationError) as caught:
        users.to_backend({HR: {"since": "15 March"}})
    assert caught.value.attribute == f"{HR}:since"


def test_unreadable_backend_date_is_omitted(users: ResourceMapping) -> None:
    assert HR not in users.to_scim({"since": "someday"})


def test_split_ignores_empty_parts(users: ResourceMapping) -> None:
    assert users.to_scim({"phones": "1, ,2,"})["phoneNumbers"] == [{"value": "1"}, {"value": "2"}]
    assert users.to_backend({"phoneNumbers": []})["phones"] is None


def test_split_stores_each_value_as_it_is_read_back(users: ResourceMapping) -> None:
    # Parts are read trimmed, and a filter compares them so (conditions.compare_parts):
    # stored with their spaces, " 555" was shown as "555" that `eq "555"` did not find.
    sent = {"phoneNumbers": [{"value": " 555"}, {"value": "556 "}, {"value": "  "}]}
    assert users.to_backend(sent)["phones"] == "555,556"
    assert users.to_backend({"phoneNumbers": [{"value": " "}]})["phones"] is None


def test_to_scim_renders_backend_types(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "types.toml"
    path.write_text(
        '[users]\nobject = "p"\nkey = "id"\n[users.attributes]\nuserName = "login"\n'
        f'active = "enabled"\n[users.attributes."{ENTERPRISE}"]\nemployeeNumber = "number"\n'
    )
    users = load_mapping(path).users
    assert users.to_scim({"login": "x", "enabled": 1, "number": 12}) == {
        "userName": "x",
        "active": True,
        ENTERPRISE: {"employeeNumber": "12"},
    }


def test_format_renders_backend_dates(users: ResourceMapping) -> None:
    moment = datetime(2021, 3, 15, 8, 30, tzinfo=UTC)
    assert users.to_backend({HR: {"since": moment.isoformat()}})["since"] == "15.03.2021"
    assert users.to_scim({"since": moment})[HR] == {"since": "2021-03-15T08:30:00+00:00"}


def test_multi_valued_field_holds_a_list(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "directory.toml"
    path.write_text(
        '[users]\nobject = "ou=people"\nkey = "entryUUID"\n[users.attributes]\n'
        'userName = "uid"\n"emails.value" = "mail"\n'
        'preferredLanguage = { field = "lang", constant = "en" }\n'
    )
    users = load_mapping(path).users
    emails = [{"value": "a@example.com"}, {"value": "b@example.com", "type": "home"}]
    values = users.to_backend({"userName": "a", "emails": emails, "preferredLanguage": "fr"})
    # A constant with a field is written whatever the client sent, and read as the constant.
    assert values == {"uid": "a", "mail": ["a@example.com", "b@example.com"], "lang": "en"}
    assert users.to_scim({"uid": "a", "mail": ["a@example.com"], "lang": "de"}) == {
        "userName": "a",
        "emails": [{"value": "a@example.com"}],
        "preferredLanguage": "en",
    }


def test_untyped_primary_entry_with_no_slot_left_replaces_one_not_primary(
    users: ResourceMapping,
) -> None:
    # What `replace emails[primary eq true].value` leaves on a user whose stored emails
    # are not marked primary: the new value, untyped, beside the old ones.
    values = users.to_backend(
        {
            "emails": [
                {"value": "old@example.com", "type": "work"},
                {"value": "h@example.com", "type": "home"},
                {"value": "new@example.com", "primary": True},
            ]
        }
    )
    assert (values["work_mail"], values["home_mail"]) == ("new@example.com", "h@example.com")


def test_untyped_primary_entry_takes_a_free_slot_before_displacing_one(
    users: ResourceMapping,
) -> None:
    # The work and home slots: the typed work entry keeps its slot, the untyped primary
    # one fills the home slot left free; nothing is dropped.
    values = users.to_backend(
        {
            "emails": [
                {"value": "w@example.com", "type": "work"},
                {"value": "p@example.com", "primary": True},
            ]
        }
    )
    assert (values["work_mail"], values["home_mail"]) == ("w@example.com", "p@example.com")


def test_typed_primary_entry_keeps_its_slot_before_an_untyped_primary(
    users: ResourceMapping,
) -> None:
    values = users.to_backend(
        {
            "emails": [
                {"value": "loose@example.com", "primary": True},
                {"value": "work@example.com", "type": "work", "primary": True},
            ]
        }
    )
    assert (values["work_mail"], values["home_mail"]) == ("work@example.com", "loose@example.com")


def test_a_template_with_a_field_is_computed_written_and_read_back(
    load: Callable[[str], Any],
) -> None:
    """`field` beside `template`: the computed value is stored too (an LDAP `cn` made of
    the names), and what the record holds is what is read back."""
    users = load(
        '[users]\nobject = "people"\nkey = "id"\n[users.attributes]\nuserName = "login"\n'
        'name.givenName = "first"\nname.familyName = "last"\n'
        'displayName = { field = "display", template = "{name.givenName} {name.familyName}" }\n'
    ).users
    sent = {"userName": "ann", "name": {"givenName": "Ann", "familyName": "Lee"}}
    assert users.to_backend({**sent, "displayName": "ignored: computed"}) == {
        "login": "ann",
        "first": "Ann",
        "last": "Lee",
        "display": "Ann Lee",
    }
    stored = {"login": "ann", "first": "Ann", "last": "Lee", "display": "Ann B. Lee"}
    assert users.to_scim(stored)["displayName"] == "Ann B. Lee"
    # A PATCH of a name writes the value computed again beside it.
    renamed = {**sent, "name": {"givenName": "Anna", "familyName": "Lee"}}
    before = users.to_backend(sent, current=stored, defaults=False)
    after = users.to_backend(renamed, current=stored, defaults=False)
    assert users.changes(before, after) == {"first": "Anna", "display": "Anna Lee"}


def test_a_day_read_from_a_date_column_keeps_the_attributes_type(tmp_path: pathlib.Path) -> None:
    # A string attribute (as sql-default declares startDate) kept in a DATE column reads
    # back as the date sent, not as a timestamp the client never wrote (every sync would
    # see a change); a dateTime attribute reads as midnight UTC of that day (RFC 7643 §2.3.5).
    path = tmp_path / "days.toml"
    path.write_text(
        '[users]\nobject = "people"\nkey = "id"\n[users.attributes]\nuserName = "login"\n'
        f'[users.attributes."{HR}"]\nhired = "hired"\nchecked = "checked"\n'
        f'[extensions."{HR}".attributes]\nhired = "string"\nchecked = "dateTime"\n'
    )
    mapping = load_mapping(path).users
    assert mapping is not None
    shown = mapping.to_scim({"login": "a", "hired": date(2026, 3, 1), "checked": date(2026, 3, 1)})
    assert shown[HR] == {"hired": "2026-03-01", "checked": "2026-03-01T00:00:00+00:00"}


def test_a_refused_password_is_not_repeated_in_the_error(tmp_path: pathlib.Path) -> None:
    """The password is `returned: never` (RFC 7643 §7): an error about it, which the
    client reads and the log may keep, names the attribute but never quotes the value."""
    path = tmp_path / "passwords.toml"
    path.write_text(
        '[users]\nobject = "people"\nkey = "id"\n\n[users.attributes]\nuserName = "login"\n'
        'password = { field = "pw", map = { "only-this" = "stored" } }\n'
        'title = { field = "title", map = { "Engineer" = "E" } }\n'
    )
    users = load_mapping(path).users
    with pytest.raises(TranslationError) as caught:
        users.to_backend({"userName": "bjensen", "password": "hunter2-Secret"})
    assert caught.value.attribute == "password"
    assert str(caught.value) == "the value of 'password' is not one the backend can store"
    # Any other attribute's value is still quoted: the client needs to see which.
    with pytest.raises(TranslationError) as caught:
        users.to_backend({"userName": "bjensen", "title": "Chef"})
    assert str(caught.value) == "value 'Chef' of 'title' is not one the backend can store"
