"""Discovery documents are generated from the mapping (RFC 7644 §4)."""

from scim_client import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, Scim


async def test_service_provider_config_states_what_is_supported(scim: Scim) -> None:
    answer = await scim.get("/ServiceProviderConfig")
    assert answer.status == 200
    body = answer.body
    assert body["patch"]["supported"] is True
    assert body["bulk"]["supported"] is False
    assert body["filter"] == {"supported": True, "maxResults": 50}
    assert body["etag"]["supported"] is True
    assert body["sort"]["supported"] is True
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"


async def test_resource_types_name_their_endpoints_and_extensions(scim: Scim) -> None:
    answer = await scim.get("/ResourceTypes")
    by_name = {item["name"]: item for item in answer.body["Resources"]}
    assert by_name["User"]["endpoint"] == "/Users"
    assert by_name["User"]["schema"] == USER_SCHEMA
    assert by_name["User"]["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    assert by_name["Group"]["endpoint"] == "/Groups"
    single = await scim.get("/ResourceTypes/User")
    assert single.body["id"] == "User"


async def test_schemas_announce_only_mapped_attributes(scim: Scim) -> None:
    answer = await scim.get("/Schemas")
    by_id = {item["id"]: item for item in answer.body["Resources"]}
    assert set(by_id) == {USER_SCHEMA, ENTERPRISE, GROUP_SCHEMA}
    user = {a["name"]: a for a in by_id[USER_SCHEMA]["attributes"]}
    assert "userName" in user
    assert "title" in user
    assert "groups" in user
    assert "password" not in user
    assert "x509Certificates" not in user
    assert "ims" not in user
    emails = {s["name"]: s for s in user["emails"]["subAttributes"]}
    assert set(emails) == {"value", "type"}
    assert emails["type"]["canonicalValues"] == ["work"]
    group = {a["name"] for a in by_id[GROUP_SCHEMA]["attributes"]}
    assert group == {"displayName", "members"}
    enterprise = {a["name"] for a in by_id[ENTERPRISE]["attributes"]}
    assert {"employeeNumber", "department", "manager"} <= enterprise
    single = await scim.get(f"/Schemas/{ENTERPRISE}")
    assert single.body["id"] == ENTERPRISE
    assert (await scim.get("/Schemas/urn:nope")).status == 404
