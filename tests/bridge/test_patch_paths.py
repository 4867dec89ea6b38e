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
    payload, _ = service._resolved_paths({"Operations": list(operations)})
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
    """Removed, or given a complex value: refused at once. Replaced by a plain value:
    taken out, to be compared with what the attribute reads after the others (the
    service's tests on sql-hr-table, test_hr_table_entra.py)."""
    assert refusal(users, {"op": "remove", "path": path}) == (400, "mutability")
    assert refusal(users, {"op": "add", "path": path, "value": {"x": 1}}) == (400, "mutability")
    replaced = {"op": "replace", "path": path, "value": "x"}
    title = {"op": "replace", "path": "title", "value": "t"}
    payload, computed = users._resolved_paths({"Operations": [replaced, title]})
    assert (payload["Operations"], computed) == ([title], [(path, "x")])


def test_a_computed_key_of_a_pathless_value_is_left_to_be_ignored(users: ResourceService) -> None:
    operation = {"op": "replace", "value": {"displayName": "x", "title": "t"}}
    assert resolved(users, operation) == [operation]


@pytest.mark.parametrize("path", ["foo", "name.nickname", "members"])
def test_a_path_naming_no_attribute_is_refused(users: ResourceService, path: str) -> None:
    assert refusal(users, {"op": "replace", "path": path, "value": "x"}) == (400, "invalidPath")


@pytest.fixture
def groups() -> ResourceService:
    connector: Any = None
    mapping = load_mapping("sql-default").groups
    assert mapping is not None
    return ResourceService(Kind.GROUPS, mapping, connector)


@pytest.mark.parametrize(
    "path",
    [
        "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",  # the other type's
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:Usr:department",  # misspelt
        "urn:ietf:params:scim:schemas:core:2.0:Users:title",
    ],
)
def test_a_path_under_a_schema_of_the_rfc_the_user_does_not_have_is_refused(
    users: ResourceService, path: str
) -> None:
    for op in ("add", "replace", "remove"):
        assert refusal(users, {"op": op, "path": path, "value": "x"}) == (400, "invalidPath")


def test_a_path_under_the_user_schema_is_refused_on_a_group(groups: ResourceService) -> None:
    path = "urn:ietf:params:scim:schemas:core:2.0:User:displayName"
    assert refusal(groups, {"op": "replace", "path": path, "value": "x"}) == (400, "invalidPath")


def test_custom_extensions_and_an_undeclared_enterprise_extension_stay_tolerated(
    tmp_path: pathlib.Path,
) -> None:
    """What identity providers send whatever the service maps: their directory's custom
    extensions (Entra), and the enterprise extension to a mapping without it (every one)."""
    path = tmp_path / "plain.toml"
    path.write_text(MAPPING.replace(f'"{ENTERPRISE}".department = "dept"\n', ""))
    connector: Any = None
    plain = ResourceService(Kind.USERS, load_mapping(path).users, connector)
    operations = [
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Sales"},
        {
            "op": "replace",
            "path": "urn:ietf:params:scim:schemas:extension:Acme:2.0:User:x",
            "value": "y",
        },
        {"op": "add", "path": "urn:example:custom:costCenter", "value": "42"},
    ]
    assert resolved(plain, *operations) == operations
