"""What identity providers send, brought back to RFC shape before validation."""

from bridge.quirks import (
    ENTERPRISE_SCHEMA,
    USER_SCHEMA,
    normalize_patch,
    normalize_resource,
)

KNOWN = {USER_SCHEMA, ENTERPRISE_SCHEMA}


def test_onelogin_legacy_schema_names_and_single_email_object() -> None:
    payload = {
        "schemas": ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"],
        "userName": "alan",
        "emails": {"value": "alan@example.com", "type": "work", "primary": True},
        "urn:scim:schemas:extension:enterprise:2.0": {
            "department": "Research",
            "manager": {"managerId": "42", "displayName": "Grace"},
        },
    }
    result = normalize_resource(payload, core_schema=USER_SCHEMA, known_schemas=KNOWN)
    assert result["schemas"] == [USER_SCHEMA, ENTERPRISE_SCHEMA]
    assert result["emails"] == [{"value": "alan@example.com", "type": "work", "primary": True}]
    assert result[ENTERPRISE_SCHEMA] == {
        "department": "Research",
        "manager": {"value": "42", "$ref": "../Users/42"},
    }
    assert "urn:scim:schemas:extension:enterprise:2.0" not in result


def test_unknown_schemas_are_dropped_and_string_booleans_become_booleans() -> None:
    payload = {
        "schemas": [
            USER_SCHEMA,
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/User",
        ],
        "userName": "mary",
        "active": "False",
        "urn:example:unknown": {"x": 1},
    }
    result = normalize_resource(payload, core_schema=USER_SCHEMA, known_schemas=KNOWN)
    assert result == {"schemas": [USER_SCHEMA], "userName": "mary", "active": False}


def test_manager_forms_in_a_body() -> None:
    for manager, expected in [
        ("7", {"value": "7", "$ref": "../Users/7"}),
        ({"value": "7"}, {"value": "7", "$ref": "../Users/7"}),
        ([{"$ref": None, "value": "7"}], {"value": "7", "$ref": "../Users/7"}),
        ({"managerId": "7"}, {"value": "7", "$ref": "../Users/7"}),
        (
            {"$ref": "https://scim.example/v2/Users/7"},
            {"value": "7", "$ref": "https://scim.example/v2/Users/7"},
        ),
        ("", None),
    ]:
        payload = {"userName": "u", ENTERPRISE_SCHEMA: {"manager": manager}}
        result = normalize_resource(payload, core_schema=USER_SCHEMA, known_schemas=KNOWN)
        assert result[ENTERPRISE_SCHEMA]["manager"] == expected, manager


def test_patch_manager_forms() -> None:
    qualified = f"{ENTERPRISE_SCHEMA}:manager"
    bare = normalize_patch(
        {"Operations": [{"op": "Add", "path": qualified, "value": "7"}]}, resource_id="1"
    )
    assert bare["Operations"] == [
        {"op": "Add", "path": qualified, "value": {"value": "7", "$ref": "../Users/7"}}
    ]
    listed = normalize_patch(
        {"Operations": [{"op": "Add", "path": "manager", "value": [{"$ref": None, "value": "7"}]}]},
        resource_id="1",
    )
    assert listed["Operations"] == [
        {"op": "Add", "path": qualified, "value": {"value": "7", "$ref": "../Users/7"}}
    ]
    removed = normalize_patch(
        {"Operations": [{"op": "Replace", "path": qualified, "value": ""}]}, resource_id="1"
    )
    assert removed["Operations"] == [{"op": "remove", "path": qualified}]


def test_patch_string_booleans_and_echoed_id() -> None:
    result = normalize_patch(
        {
            "Operations": [
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "replace", "value": {"id": "5", "displayName": "x", "active": "true"}},
            ]
        },
        resource_id="5",
    )
    assert result["Operations"][0]["value"] is False
    assert result["Operations"][1]["value"] == {"displayName": "x", "active": True}


def test_patch_keeps_an_id_that_is_not_the_resources_own() -> None:
    result = normalize_patch(
        {"Operations": [{"op": "replace", "value": {"id": "6"}}]}, resource_id="5"
    )
    assert result["Operations"][0]["value"] == {"id": "6"}
