"""A stored record as the SCIM resource a client reads (RFC 7643 §3, §4).

The mapping translates attribute values; this module adds what belongs to the protocol:
`id`, `schemas`, `meta` (with the version that the ETag header repeats), references as
`{"value", "$ref", "display"}`, and the manager's `$ref` and `displayName`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.quirks import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from connectors.base import Kind, MemberRef, Record
from mappings import ResourceMapping

RESOURCE_TYPE_NAMES = {kind: kind.resource_type for kind in Kind}
ENDPOINTS = {Kind.USERS: "Users", Kind.GROUPS: "Groups"}
CORE_SCHEMAS = {Kind.USERS: USER_SCHEMA, Kind.GROUPS: GROUP_SCHEMA}


def etag(version: str) -> str:
    """A weak entity tag (RFC 7232 §2.3): equal versions mean semantically equal resources."""
    return f'W/"{version}"'


def parse_etags(header: str) -> set[str]:
    """The versions an If-Match header names; `*` is returned as itself."""
    versions = set()
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        versions.add(tag.strip('"'))
    return versions


@dataclass(frozen=True)
class Renderer:
    """Renders records of one resource type; `base_url` ends with the SCIM base path."""

    kind: Kind
    mapping: ResourceMapping
    base_url: str

    def location(self, kind: Kind, id: str) -> str:
        return f"{self.base_url}/{ENDPOINTS[kind]}/{id}"

    def render(
        self, record: Record, managers: Mapping[str, str | None] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [CORE_SCHEMAS[self.kind]], "id": record.id}
        body.update(self.mapping.to_scim(record.values))
        body["schemas"] += [key for key in body if key.lower().startswith("urn:")]
        if record.members is not None:
            members = [self._reference(Kind.USERS, member, "User") for member in record.members]
            if members:
                body["members"] = members
        if record.groups is not None:
            groups = [self._reference(Kind.GROUPS, group, "direct") for group in record.groups]
            if groups:
                body["groups"] = groups
        extension = body.get(ENTERPRISE_SCHEMA)
        if isinstance(extension, dict) and isinstance(extension.get("manager"), dict):
            manager = extension["manager"]
            manager_id = str(manager.get("value"))
            manager["$ref"] = self.location(Kind.USERS, manager_id)
            display = (managers or {}).get(manager_id)
            if display:
                manager["displayName"] = display
        body["meta"] = self._meta(record)
        return body

    def _reference(self, kind: Kind, ref: MemberRef, type_: str) -> dict[str, Any]:
        item: dict[str, Any] = {"value": ref.id, "$ref": self.location(kind, ref.id), "type": type_}
        if ref.display:
            item["display"] = ref.display
        return item

    def _meta(self, record: Record) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceType": RESOURCE_TYPE_NAMES[self.kind]}
        if record.created is not None:
            meta["created"] = _iso(record.created)
        if record.modified is not None:
            meta["lastModified"] = _iso(record.modified)
        elif record.created is not None:
            meta["lastModified"] = meta["created"]
        meta["location"] = self.location(self.kind, record.id)
        meta["version"] = etag(record.version)
        return meta


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")
