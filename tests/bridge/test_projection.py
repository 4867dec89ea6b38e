"""attributes / excludedAttributes (RFC 7644 §3.9) on rendered resources."""

from bridge.projection import Projection
from bridge.quirks import ENTERPRISE_SCHEMA, USER_SCHEMA

RESOURCE = {
    "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
    "id": "1",
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "emails": [{"type": "work", "value": "b@example.com"}],
    ENTERPRISE_SCHEMA: {"department": "R&D", "manager": {"value": "2", "$ref": "x"}},
    "meta": {"resourceType": "User"},
}


def parse(attributes: list[str] | None = None, excluded: list[str] | None = None) -> Projection:
    return Projection.parse(attributes, excluded, core=USER_SCHEMA, extensions=[ENTERPRISE_SCHEMA])


def test_attributes_keep_only_what_is_asked_and_id_and_schemas() -> None:
    result = parse(["userName", "NAME.givenName"]).apply(RESOURCE)
    assert result == {
        "schemas": [USER_SCHEMA],  # the extension is not in the response: not listed
        "id": "1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara"},
    }


def test_attributes_with_urn_prefixes() -> None:
    result = parse([f"{ENTERPRISE_SCHEMA}:manager.value", f"{USER_SCHEMA}:emails.value"]).apply(
        RESOURCE
    )
    assert result[ENTERPRISE_SCHEMA] == {"manager": {"value": "2"}}
    assert result["emails"] == [{"value": "b@example.com"}]
    assert "userName" not in result


def test_excluded_attributes_never_remove_id() -> None:
    result = parse(excluded=["emails", "id", f"{ENTERPRISE_SCHEMA}:department", "meta"]).apply(
        RESOURCE
    )
    assert "emails" not in result
    assert result["id"] == "1"
    assert result[ENTERPRISE_SCHEMA] == {"manager": {"value": "2", "$ref": "x"}}
    assert "meta" not in result


def test_wants_tells_whether_members_must_be_loaded() -> None:
    assert parse().wants("members")
    assert not parse(excluded=["members"]).wants("members")
    assert not parse(["displayName"]).wants("members")
    assert parse(["members.value"]).wants("members")


def test_an_extension_left_without_attributes_goes_with_its_schema() -> None:
    every = [f"{ENTERPRISE_SCHEMA}:department", f"{ENTERPRISE_SCHEMA}:manager"]
    result = parse(excluded=every).apply(RESOURCE)
    assert ENTERPRISE_SCHEMA not in result
    assert result["schemas"] == [USER_SCHEMA]
    assert result["userName"] == "bjensen"
    kept = parse(excluded=[f"{ENTERPRISE_SCHEMA}:department"]).apply(RESOURCE)
    assert kept["schemas"] == [USER_SCHEMA, ENTERPRISE_SCHEMA]


def test_an_object_left_without_sub_attributes_is_left_out() -> None:
    result = parse(excluded=["name.givenName", "name.familyName", "emails.value", "emails.type"])
    shown = result.apply(RESOURCE)
    assert "name" not in shown
    assert "emails" not in shown


def test_simple_values_of_a_list_stay_whatever_their_truth() -> None:
    resource = {**RESOURCE, "roles": ["", "admin"], "entitlements": [0, False]}
    shown = parse(excluded=["roles.value", "entitlements.value"]).apply(resource)
    assert shown["roles"] == ["", "admin"]
    assert shown["entitlements"] == [0, False]
