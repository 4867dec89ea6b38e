"""Discovery documents are generated from the mapping (RFC 7644 §4)."""

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from direct import SqlDirect
from scim_client import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, Scim
from served import serve

EMPLOYMENT = "urn:scim-bridge:schemas:extension:employment:2.0:User"


async def test_service_provider_config_states_what_is_supported(scim: Scim) -> None:
    answer = await scim.get("/ServiceProviderConfig")
    assert answer.status == 200
    body = answer.body
    assert body["patch"]["supported"] is True
    assert body["bulk"]["supported"] is False
    assert body["filter"] == {"supported": True, "maxResults": 50}
    assert body["etag"]["supported"] is True
    assert body["sort"]["supported"] is True
    assert body["changePassword"]["supported"] is False  # the presets store no password
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"


async def test_resource_types_name_their_endpoints_and_extensions(scim: Scim) -> None:
    answer = await scim.get("/ResourceTypes")
    by_name = {item["name"]: item for item in answer.body["Resources"]}
    assert by_name["User"]["endpoint"] == "/Users"
    assert by_name["User"]["schema"] == USER_SCHEMA
    extensions = [{"schema": ENTERPRISE, "required": False}]
    if scim.backend.name != "ldap":  # sql-default declares an extension of its own
        extensions.append({"schema": EMPLOYMENT, "required": False})
    assert by_name["User"]["schemaExtensions"] == extensions
    assert by_name["Group"]["endpoint"] == "/Groups"
    single = await scim.get("/ResourceTypes/User")
    assert single.body["id"] == "User"


async def test_schemas_announce_only_mapped_attributes(scim: Scim) -> None:
    answer = await scim.get("/Schemas")
    by_id = {item["id"]: item for item in answer.body["Resources"]}
    declared = {EMPLOYMENT} if scim.backend.name != "ldap" else set()
    assert set(by_id) == {USER_SCHEMA, ENTERPRISE, GROUP_SCHEMA, *declared}
    user = {a["name"]: a for a in by_id[USER_SCHEMA]["attributes"]}
    assert user["userName"]["uniqueness"] == "server"  # unique = true in every preset
    assert user["title"]["uniqueness"] == "none"
    assert "title" in user
    assert "groups" in user
    assert "password" not in user
    assert "x509Certificates" not in user
    assert "ims" not in user
    emails = {s["name"]: s for s in user["emails"]["subAttributes"]}
    assert set(emails) == {"value", "type"}
    assert emails["type"]["canonicalValues"] == ["work"]
    group = {a["name"]: a for a in by_id[GROUP_SCHEMA]["attributes"]}
    assert set(group) == {"displayName", "members"}
    # Members are users only (a group as a member is refused): announced so.
    # The directory preset keeps group names unique (cn is the RDN); the SQL one does not.
    expected = "server" if scim.backend.name == "ldap" else "none"
    assert group["displayName"]["uniqueness"] == expected
    members = {s["name"]: s for s in group["members"]["subAttributes"]}
    assert members["type"]["canonicalValues"] == ["User"]
    assert members["$ref"]["referenceTypes"] == ["User"]
    enterprise = {a["name"] for a in by_id[ENTERPRISE]["attributes"]}
    assert {"employeeNumber", "department", "manager"} <= enterprise
    single = await scim.get(f"/Schemas/{ENTERPRISE}")
    assert single.body["id"] == ENTERPRISE
    assert (await scim.get("/Schemas/urn:nope")).status == 404


async def test_schemas_describe_what_the_service_does(scim: Scim) -> None:
    answer = await scim.get("/Schemas")
    by_id = {item["id"]: item for item in answer.body["Resources"]}
    assert by_id[USER_SCHEMA]["description"] == "User Account"  # RFC 7643 §8.7.1
    # The manager is its value alone: $ref is made from it (RFC 7643 §8.7.1: required false).
    enterprise = {a["name"]: a for a in by_id[ENTERPRISE]["attributes"]}
    manager = {s["name"]: s for s in enterprise["manager"]["subAttributes"]}
    assert (manager["value"]["required"], manager["$ref"]["required"]) == (False, False)
    group = {a["name"]: a for a in by_id[GROUP_SCHEMA]["attributes"]}
    members = {s["name"]: s for s in group["members"]["subAttributes"]}
    assert members["display"]["mutability"] == "readOnly"
    assert members["display"]["description"]

    def descriptions(node: Any) -> list[str]:
        if isinstance(node, list):
            return [text for item in node for text in descriptions(item)]
        if isinstance(node, dict):
            own = [node["description"]] if isinstance(node.get("description"), str) else []
            return own + [text for value in node.values() for text in descriptions(value)]
        return []

    assert not [text for text in descriptions(answer.body) if "\n" in text or "  " in text]


async def test_a_declared_extension_is_announced_and_works_like_the_others(
    sqlite_direct: SqlDirect,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scim = await serve(sqlite_direct, tmp_path, aiohttp_client, monkeypatch)
    schema = (await scim.get(f"/Schemas/{EMPLOYMENT}")).body
    assert schema["name"] == "Employment"
    assert [(a["name"], a["type"], a["mutability"]) for a in schema["attributes"]] == [
        ("startDate", "string", "readWrite")
    ]
    user = await scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA, EMPLOYMENT],
            "userName": "starter",
            EMPLOYMENT: {"startDate": "2026-03-01"},
        },
    )
    assert user.status == 201, user.body
    assert user.body[EMPLOYMENT] == {"startDate": "2026-03-01"}
    assert EMPLOYMENT in user.body["schemas"]
    stored = await sqlite_direct.user("starter")
    assert stored is not None
    assert stored["start_date"] == "2026-03-01"
    by_start = quote(f'{EMPLOYMENT}:startDate sw "2026-03"')
    found = await scim.get(f"/Users?filter={by_start}")
    assert [r["id"] for r in found.body["Resources"]] == [user.body["id"]]
    moved = await scim.patch(
        f"/Users/{user.body['id']}",
        {"op": "replace", "path": f"{EMPLOYMENT}:startDate", "value": "2026-04-01"},
    )
    assert moved.body[EMPLOYMENT] == {"startDate": "2026-04-01"}
    only = await scim.get(f"/Users/{user.body['id']}?attributes={EMPLOYMENT}:startDate")
    assert set(only.body) == {"schemas", "id", EMPLOYMENT}
