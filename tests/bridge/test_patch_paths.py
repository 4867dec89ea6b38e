"""PATCH paths resolved against the resource type's schemas and its mapping (RFC 7644
§3.5.2): unknown ones refused, computed ones refused as written, others made canonical."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from bridge.errors import ScimError
from bridge.resources import ResourceService
from connectors.base import Kind
from mappings import load_mapping

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MAPPING = """
[users]
object = "people"
key = "id"
[users.attributes]
userName = { field = "login", unique = true }
"name.givenName" = "first"
"name.familyName" = "last"
"name.formatted" = { template = "{name.givenName} {name.familyName}" }
displayName = { template = "{name.givenName}" }
title = "title"
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".department = "dept"
"""


@pytest.fixture
def users(tmp_path: pathlib.Path) -> ResourceService:
    path = tmp_path / "mapping.toml"
    path.write_text(MAPPING)
    connector: Any = None  # resolving paths reads no backend
    return ResourceService(Kind.USERS, load_mapping(path).users, connector)


def resolved(service: ResourceService, *operations: dict[str, Any]) -> list[Any]:
    payload = service._resolved_paths({"Operations": list(operations)})
    return list(payload["Operations"])


def refusal(service: ResourceService, operation: dict[str, Any]) -> tuple[int, str | None]:
    with pytest.raises(ScimError) as raised:
        resolved(service, operation)
    return raised.value.status, raised.value.scim_type


def test_known_paths_pass_and_extension_names_are_qualified(users: ResourceService) -> None:
    assert resolved(
        users,
        {"op": "replace", "path": "title", "value": "x"},
        {"op": "replace", "path": "department", "value": "y"},
        {"op": "replace", "path": "urn:scim:schemas:core:2.0:title", "value": "z"},
    ) == [
        {"op": "replace", "path": "title", "value": "x"},
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "y"},
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:title", "value": "z"},
    ]


@pytest.mark.parametrize("path", ["displayName", "name.formatted", "NAME.FORMATTED"])
def test_a_computed_target_is_refused_as_written(users: ResourceService, path: str) -> None:
    assert refusal(users, {"op": "replace", "path": path, "value": "x"}) == (400, "mutability")


def test_a_computed_key_of_a_pathless_value_is_left_to_be_ignored(users: ResourceService) -> None:
    operation = {"op": "replace", "value": {"displayName": "x", "title": "t"}}
    assert resolved(users, operation) == [operation]


@pytest.mark.parametrize("path", ["foo", "name.nickname", "members"])
def test_a_path_naming_no_attribute_is_refused(users: ResourceService, path: str) -> None:
    assert refusal(users, {"op": "replace", "path": path, "value": "x"}) == (400, "invalidPath")
