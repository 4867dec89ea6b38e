"""Values sent for readOnly attributes are ignored, whatever their form (RFC 7644 §3.5.1)."""

from __future__ import annotations

from scim_client import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, Scim


async def test_a_create_ignores_read_only_values_of_any_form(scim: Scim) -> None:
    group = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops"})
    answer = await scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA],
            "userName": "echo",
            "id": 12345,
            "meta": {"created": "yesterday", "version": 5, "resourceType": ["User"]},
            "groups": [{"value": group.body["id"], "display": 7}],
        },
    )
    assert answer.status == 201, answer.body
    assert str(answer.body["id"]) != "12345"  # the service's own id, as a string
    assert isinstance(answer.body["id"], str)
    assert answer.body["meta"]["resourceType"] == "User"
    assert answer.body["meta"]["created"] != "yesterday"
    assert "groups" not in answer.body or answer.body["groups"] == []
    members = await scim.get(f"/Groups/{group.body['id']}")
    assert not members.body.get("members")


async def test_a_replace_echoing_a_resource_with_read_only_values_changed_is_applied(
    scim: Scim,
) -> None:
    boss = await scim.create_user("boss", displayName="The Boss")
    user = await scim.create_user("echo", title="Before", schemas=[USER_SCHEMA, ENTERPRISE])
    echoed = {
        **user,
        "id": int(user["id"]) if user["id"].isdigit() else 12345,
        "title": "After",
        "meta": {**user["meta"], "created": "yesterday", "version": 5},
        ENTERPRISE: {"manager": {"value": boss["id"], "displayName": 5}},
    }
    answer = await scim.put(f"/Users/{user['id']}", echoed)
    assert answer.status == 200, answer.body
    assert answer.body["id"] == user["id"]
    assert answer.body["title"] == "After"
    assert answer.body["meta"]["created"] == user["meta"]["created"]
    assert answer.body[ENTERPRISE]["manager"]["value"] == boss["id"]
    again = await scim.get(f"/Users/{user['id']}")
    assert again.body == answer.body


async def test_read_only_values_do_not_excuse_a_wrong_writable_one(scim: Scim) -> None:
    answer = await scim.post(
        "/Users", {"schemas": [USER_SCHEMA], "userName": "x", "meta": 5, "active": "perhaps"}
    )
    assert answer.status == 400
    assert answer.body["scimType"] == "invalidValue"
    assert "active" in answer.body["detail"]
