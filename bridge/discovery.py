"""`/ServiceProviderConfig`, `/Schemas` and `/ResourceTypes` (RFC 7644 §4, RFC 7643 §5-7).

Generated from the configuration and the mappings: a schema announces only the attributes
that are mapped, with the sub-attributes and canonical values the mapping can store, so a
client (or scim2-tester) that writes what is announced reads back what it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from scim2_models import (
    Attribute,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    Filter,
    Mutability,
    Patch,
    Required,
    ResourceType,
    Schema,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models import Resource as ScimResource

from bridge.render import ENDPOINTS, RESOURCE_TYPE_NAMES
from bridge.resources import ResourceService
from connectors.base import Kind
from mappings import AnnouncedAttribute

_RESPONSE = Context.RESOURCE_QUERY_RESPONSE
_REFERENCE_SUB_ATTRIBUTES = {
    "manager": {"value", "$ref", "displayName"},
    "members": {"value", "$ref", "type", "display"},
    "groups": {"value", "$ref", "type", "display"},
}


@dataclass(frozen=True)
class Discovery:
    """The three discovery documents, rendered once; each request adds its base URL."""

    services: Mapping[Kind, ResourceService]
    max_results: int
    max_body_bytes: int

    def service_provider_config(self, base_url: str) -> dict[str, Any]:
        return _located(self._service_provider_config, base_url)

    def resource_types(self, base_url: str) -> list[dict[str, Any]]:
        return [_located(document, base_url) for document in self._resource_types]

    def schemas(self, base_url: str) -> list[dict[str, Any]]:
        return [_located(document, base_url) for document in self._schemas]

    @cached_property
    def _service_provider_config(self) -> dict[str, Any]:
        config = ServiceProviderConfig(
            documentation_uri=None,
            patch=Patch(supported=True),
            bulk=Bulk(supported=False, max_operations=0, max_payload_size=self.max_body_bytes),
            filter=Filter(supported=True, max_results=self.max_results),
            change_password=ChangePassword(supported=self._stores_password),
            sort=Sort(supported=True),
            etag=ETag(supported=True),
            authentication_schemes=[
                AuthenticationScheme(
                    type="oauthbearertoken",
                    name="OAuth Bearer Token",
                    description="Authentication with a bearer token (RFC 6750)",
                    primary=True,
                )
            ],
        )
        body = config.model_dump(scim_ctx=_RESPONSE)
        body["meta"] = {
            "resourceType": "ServiceProviderConfig",
            "location": "/ServiceProviderConfig",
        }
        return body

    @property
    def _stores_password(self) -> bool:
        """Whether the users' mapping stores `password`, which a PATCH or PUT then
        changes (RFC 7644 §5 changePassword): the presets do not."""
        users = self.services.get(Kind.USERS)
        return users is not None and any(
            rule.field is not None and rule.target.attr.lower() == "password"
            for rule in users.mapping.rules.rules
        )

    @cached_property
    def _resource_types(self) -> list[dict[str, Any]]:
        documents = []
        for kind, service in self.services.items():
            name = RESOURCE_TYPE_NAMES[kind]
            resource_type = ResourceType.from_resource(service.model)
            body = resource_type.model_dump(scim_ctx=_RESPONSE)
            body["endpoint"] = f"/{ENDPOINTS[kind]}"
            announced = service.mapping.announced()
            extensions = [
                extension
                for extension in body.get("schemaExtensions", [])
                if extension["schema"] in announced
            ]
            if extensions:
                body["schemaExtensions"] = extensions
            else:
                body.pop("schemaExtensions", None)
            body["meta"] = {"resourceType": "ResourceType", "location": f"/ResourceTypes/{name}"}
            documents.append(body)
        return documents

    @cached_property
    def _schemas(self) -> list[dict[str, Any]]:
        documents = []
        for kind, service in self.services.items():
            announced = service.mapping.announced()
            models: list[type[Any]] = [
                # The core resource: User for User[EnterpriseUser], the model itself otherwise.
                service.model.__pydantic_generic_metadata__["origin"] or service.model,
                *service.model.get_extension_models().values(),
            ]
            for model in models:
                urn = str(model.__schema__)
                extra = _protocol_attributes(kind, model, self.services)
                if urn not in announced and not extra:
                    continue
                schema = _pruned(model.to_schema(), announced.get(urn, {}), extra)
                body = _unwrapped(schema.model_dump(scim_ctx=_RESPONSE))
                body["meta"] = {"resourceType": "Schema", "location": f"/Schemas/{urn}"}
                documents.append(body)
        return documents


def _unwrapped(node: Any) -> Any:
    """Descriptions on one line: scim2-models takes them from docstrings, hard-wrapped,
    and a client shows them as they come."""
    if isinstance(node, list):
        return [_unwrapped(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: " ".join(value.split())
        if key == "description" and isinstance(value, str)
        else _unwrapped(value)
        for key, value in node.items()
    }


def _located(document: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The document with `meta.location` made absolute for the request's base URL."""
    meta = document["meta"]
    return {**document, "meta": {**meta, "location": base_url + meta["location"]}}


def _protocol_attributes(
    kind: Kind, model: type[Any], services: Mapping[Kind, ResourceService]
) -> set[str]:
    """Attributes the bridge itself serves, whatever the mapping: memberships."""
    if not issubclass(model, ScimResource) or Kind.GROUPS not in services:
        return set()
    return {"groups"} if kind is Kind.USERS else {"members"}


def _pruned(schema: Schema, announced: Mapping[str, AnnouncedAttribute], extra: set[str]) -> Schema:
    by_name = {name.lower(): item for name, item in announced.items()}
    kept: list[Attribute] = []
    for attribute in schema.attributes or []:
        name = str(attribute.name)
        if name.lower() in extra:
            kept.append(_members_are_users(_derived_displays_read_only(attribute)))
            continue
        item = by_name.get(name.lower())
        if item is None:
            continue
        kept.append(_pruned_attribute(attribute, item))
    return schema.model_copy(update={"attributes": kept})


def _pruned_attribute(attribute: Attribute, item: AnnouncedAttribute) -> Attribute:
    update: dict[str, Any] = {}
    if item.read_only:
        update["mutability"] = Mutability.read_only
    if item.always_present:
        update["required"] = Required.true
    if "" in item.unique:
        update["uniqueness"] = Uniqueness.server
    if attribute.sub_attributes:
        wanted = {name.lower() for name in item.sub_attributes or ()}
        wanted |= {n.lower() for n in _REFERENCE_SUB_ATTRIBUTES.get(str(attribute.name), set())}
        canonical = {name.lower(): values for name, values in item.canonical_values.items()}
        subs = []
        for sub in attribute.sub_attributes:
            sub_name = str(sub.name).lower()
            if sub_name not in wanted:
                continue
            if sub_name in canonical:
                sub = sub.model_copy(update={"canonical_values": list(canonical[sub_name])})
            if sub_name in {name.lower() for name in item.unique}:
                sub = sub.model_copy(update={"uniqueness": Uniqueness.server})
            if sub_name in {name.lower() for name in item.read_only_sub_attributes}:
                sub = sub.model_copy(update={"mutability": Mutability.read_only})
            subs.append(sub)
        update["sub_attributes"] = subs
    return _derived_displays_read_only(attribute.model_copy(update=update))


def _members_are_users(attribute: Attribute) -> Attribute:
    """A group's members are users here (nested groups are refused): `type` and `$ref`
    announce only User (RFC 7643 §7 canonicalValues, referenceTypes)."""
    if str(attribute.name) != "members" or not attribute.sub_attributes:
        return attribute
    subs = []
    for sub in attribute.sub_attributes:
        if str(sub.name) == "type":
            sub = sub.model_copy(update={"canonical_values": ["User"]})
        elif str(sub.name) == "$ref":
            sub = sub.model_copy(update={"reference_types": ["User"]})
        subs.append(sub)
    return attribute.model_copy(update={"sub_attributes": subs})


def _derived_displays_read_only(attribute: Attribute) -> Attribute:
    """A reference's display is the referenced resource's, so clients cannot write it
    (and it is described: RFC 7643 §7 asks for a description when applicable). A
    reference is its `value` alone: `$ref` is made from it, so neither sub-attribute is
    required of a client beside the other (scim2-models marks the manager's both
    required, after the "REQUIRED." of their descriptions in RFC 7643 §8.7.1, whose
    `required` is false)."""
    if str(attribute.name) not in _REFERENCE_SUB_ATTRIBUTES or not attribute.sub_attributes:
        return attribute
    subs = []
    for sub in attribute.sub_attributes:
        name = str(sub.name)
        if name in ("display", "displayName"):
            description = sub.description or _DISPLAY_DESCRIPTION
            sub = sub.model_copy(
                update={"mutability": Mutability.read_only, "description": description}
            )
        elif name in ("value", "$ref"):
            sub = sub.model_copy(update={"required": Required.false})
        subs.append(sub)
    return attribute.model_copy(update={"sub_attributes": subs})


_DISPLAY_DESCRIPTION = "The referenced resource's display name, set by the service."
