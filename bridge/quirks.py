"""Bring what real identity providers send back to RFC 7643/7644 shape, before validation.

Every tolerance applies to every client at once: there is no per-client switch, and each
rewrite is one that cannot change the meaning of a well-formed payload.

- OneLogin's legacy template names the schemas `urn:scim:schemas:core:2.0` and
  `urn:scim:schemas:extension:enterprise:2.0` (its Enterprise User Schema template SCIM
  1.1's `...:core:1.0` and `...:enterprise:1.0`), and sends `emails` as one object.
- Entra sends booleans as strings (`"active": "False"`), the manager as a bare string, as
  `[{"$ref": null, "value": ...}]` and under the unqualified path `manager`, and `""` to
  remove it (as some clients remove `manager.value`); it adds schemas of its own
  (`http://schemas.microsoft.com/...`).
- OneLogin's legacy template sends the manager as `{"managerId": ...}`.
- Okta echoes `id` in path-less PATCH values and PUT bodies.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bridge.errors import ScimError

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

_LEGACY_SCHEMAS = {
    "urn:scim:schemas:core:2.0": None,  # core: the resource's own schema, decided per kind
    "urn:scim:schemas:extension:enterprise:2.0": ENTERPRISE_SCHEMA,
    "urn:scim:schemas:extension:enterprise:2.0:user": ENTERPRISE_SCHEMA,
    # OneLogin's "Enterprise User Schema" template (developers.onelogin.com/scim) names
    # SCIM 1.1's schemas, whose attributes 2.0 kept: unknown, its department and manager
    # were dropped, and a PUT cleared them.
    "urn:scim:schemas:core:1.0": None,
    "urn:scim:schemas:extension:enterprise:1.0": ENTERPRISE_SCHEMA,
}

_MULTI_VALUED_COMPLEX = {
    "emails",
    "phonenumbers",
    "ims",
    "photos",
    "addresses",
    "entitlements",
    "roles",
    "x509certificates",
    "members",
}
_BOOLEAN_ATTRIBUTES = {"active", "primary"}
_MANAGER_PATHS = {"manager", f"{ENTERPRISE_SCHEMA.lower()}:manager"}
_MANAGER_SELECTED = re.compile(
    rf'(?:{re.escape(ENTERPRISE_SCHEMA)}:)?manager\[\s*value\s+eq\s+"((?:[^"\\]|\\.)*)"\s*\]',
    re.IGNORECASE,
)
"""Entra's removal of a manager it names: `manager[value eq "id"]` (a filter the RFC
keeps for multi-valued attributes, so scim2-models refuses it on the single manager)."""

MANAGER_WAS = "scim-bridge:manager-was"
"""Key of a normalized manager removal that names the manager it removes: the removal
applies only while that is still the manager (bridge.resources takes the key out)."""
_MANAGER_VALUE_PATHS = {f"{path}.value" for path in _MANAGER_PATHS}
_ENTERPRISE_NAMES = {
    ENTERPRISE_SCHEMA.lower(),
    *(legacy for legacy, urn in _LEGACY_SCHEMAS.items() if urn == ENTERPRISE_SCHEMA),
}
"""The enterprise extension's names, lowered (URNs compare case-insensitively, RFC 8141
§3.1): a path that is one of them targets the extension's attributes as one object."""


def normalize_resource(
    payload: dict[str, Any], *, core_schema: str, known_schemas: set[str]
) -> dict[str, Any]:
    """Return a copy of a POST/PUT body in RFC shape.

    `known_schemas` are the schema URNs the resource type serves; any other URN listed in
    `schemas`, and any top-level key that is such a URN, is dropped (RFC 7643 §3 lets a
    service ignore extensions it does not support).
    """
    result: dict[str, Any] = {}
    known = {urn.lower(): urn for urn in known_schemas}
    for key, value in payload.items():
        canonical = _canonical_schema(key, core_schema)
        if canonical is not None and canonical.lower() in known:
            if canonical != core_schema:
                result[known[canonical.lower()]] = _normalize_values(value)
            elif isinstance(value, dict):
                # Core attributes nested under the core URN belong at the top level.
                result.update(_normalize_values(value))
            continue
        if ":" in key and key.lower().startswith(("urn:", "http:", "https:")):
            continue
        result[key] = _normalize_value(key, value)
    schemas = payload.get("schemas")
    if isinstance(schemas, list):
        listed = []
        for urn in schemas:
            canonical = _canonical_schema(urn, core_schema) if isinstance(urn, str) else None
            if canonical is not None and canonical.lower() in known:
                listed.append(known[canonical.lower()])
        result["schemas"] = list(dict.fromkeys(listed)) or [core_schema]
    for urn in known.values():
        if urn in result and urn not in result.get("schemas", []):
            result.setdefault("schemas", [core_schema]).append(urn)
    return result


def normalize_patch(payload: dict[str, Any], *, resource_id: str) -> dict[str, Any]:
    """Return a copy of a PATCH body whose operations are in RFC 7644 §3.5.2 shape."""
    result = dict(payload)
    operations = payload.get("Operations", payload.get("operations"))
    if "operations" in result and "Operations" not in result:
        result["Operations"] = result.pop("operations")
    if not isinstance(operations, list):
        return result
    result["Operations"] = [
        _normalize_operation(operation, resource_id) if isinstance(operation, dict) else operation
        for operation in operations
    ]
    return result


def _normalize_operation(operation: dict[str, Any], resource_id: str) -> dict[str, Any]:
    operation = dict(operation)
    path = operation.get("path")
    value = operation.get("value")
    if isinstance(path, str) and path.strip():
        path = path.strip()
        removal = _manager_removal(path, operation)
        if removal is not None:
            return removal
        if path.lower() == "manager":
            path = f"{ENTERPRISE_SCHEMA}:manager"
        if path.lower() in _MANAGER_VALUE_PATHS and _clears(operation):
            # The value is the manager's only writable sub-attribute (RFC 7643 §4.3, the
            # others are read-only): without it there is no manager, not one with no id.
            return {"op": "remove", "path": f"{ENTERPRISE_SCHEMA}:manager"}
        operation["path"] = path
        if "value" in operation:
            leaf = path.rsplit(":", 1)[-1].split(".")[-1].split("]")[-1].lower()
            if path.lower() in _MANAGER_PATHS:
                manager = _normalize_manager(value)
                if manager is None and str(operation.get("op", "")).lower() != "remove":
                    return {"op": "remove", "path": path}
                operation["value"] = manager
            elif path.lower() in _ENTERPRISE_NAMES:
                # The extension's attributes as one object, the manager among them in any
                # form (RFC 7644 §3.5.2.1): as a path-less value keyed by the extension is.
                operation["value"] = _normalize_values(value)
            elif leaf in _BOOLEAN_ATTRIBUTES:
                operation["value"] = _boolean(value)
            else:
                operation["value"] = _normalize_value(leaf, value)
    elif isinstance(value, dict):
        operation["value"] = _normalize_pathless_value(value, resource_id)
    return operation


def _manager_removal(path: str, operation: dict[str, Any]) -> dict[str, Any] | None:
    """A removal of the manager that names which (Entra: by a `[value eq "id"]` filter,
    or by a value as it removes members): removed only if it is still that one, as a
    remove whose filter matches nothing changes nothing (RFC 7644 §3.5.2.2)."""
    if str(operation.get("op", "")).lower() != "remove":
        return None
    selected = _MANAGER_SELECTED.fullmatch(path)
    if selected is not None:
        try:
            named: str | None = json.loads(f'"{selected[1]}"')
        except ValueError:
            raise ScimError(
                400, f"'{path}' holds a string escape that is not JSON's", "invalidFilter"
            ) from None
    elif path.lower() in _MANAGER_PATHS and operation.get("value") not in (None, ""):
        manager = _normalize_manager(operation["value"])
        named = None if manager is None else str(manager["value"])
    else:
        return None
    removal: dict[str, Any] = {"op": "remove", "path": f"{ENTERPRISE_SCHEMA}:manager"}
    if named is not None:
        removal[MANAGER_WAS] = named
    return removal


def take_manager_conditions(payload: dict[str, Any]) -> dict[int, str]:
    """The manager each removal of `payload` names (its index -> the manager's id),
    taken out of the operations, which scim2-models would refuse with the key."""
    conditions: dict[int, str] = {}
    operations = payload.get("Operations")
    if isinstance(operations, list):
        for index, operation in enumerate(operations):
            if isinstance(operation, dict) and MANAGER_WAS in operation:
                conditions[index] = str(operation.pop(MANAGER_WAS))
    return conditions


def _clears(operation: dict[str, Any]) -> bool:
    """A remove, or an add or replace of nothing (Entra's `""`)."""
    if str(operation.get("op", "")).lower() == "remove":
        return True
    return operation.get("value") in (None, "")


def _normalize_pathless_value(value: dict[str, Any], resource_id: str) -> dict[str, Any]:
    """Clean the value of a path-less add/replace, whose keys may be attribute paths."""
    result: dict[str, Any] = {}
    for key, item in value.items():
        lowered = key.lower()
        if lowered in ("schemas", "meta"):
            continue
        if lowered == "id" and str(item) == resource_id:
            continue
        if lowered in _MANAGER_PATHS:
            manager = _normalize_manager(item)
            result[f"{ENTERPRISE_SCHEMA}:manager"] = manager
            continue
        if lowered in _ENTERPRISE_NAMES and isinstance(item, dict):
            result[key] = _normalize_values(item)
            continue
        leaf = lowered.rsplit(":", 1)[-1].split(".")[-1]
        result[key] = (
            _boolean(item) if leaf in _BOOLEAN_ATTRIBUTES else _normalize_value(leaf, item)
        )
    return result


def canonical_path(path: str, core_schema: str) -> str:
    """A path (or an extension's object key) under OneLogin's legacy schema names, under
    the RFC's (`urn:scim:schemas:core:2.0:title` is the core schema's `title`)."""
    lowered = path.lower()
    for legacy in sorted(_LEGACY_SCHEMAS, key=len, reverse=True):
        if lowered == legacy or lowered.startswith(legacy + ":"):
            return (_LEGACY_SCHEMAS[legacy] or core_schema) + path[len(legacy) :]
    return path


def _canonical_schema(urn: str, core_schema: str) -> str | None:
    lowered = urn.lower()
    if lowered in _LEGACY_SCHEMAS:
        return _LEGACY_SCHEMAS[lowered] or core_schema
    if lowered.startswith("urn:"):
        return urn
    return None


def _normalize_values(values: Any) -> Any:
    if not isinstance(values, dict):
        return values
    return {key: _normalize_value(key, value) for key, value in values.items()}


def _normalize_value(key: str, value: Any) -> Any:
    lowered = key.lower()
    if lowered == "manager":
        return _normalize_manager(value)
    if lowered in _BOOLEAN_ATTRIBUTES:
        return _boolean(value)
    if lowered in _MULTI_VALUED_COMPLEX:
        if isinstance(value, dict):
            value = [value]
        if isinstance(value, list):
            return [_normalize_values(item) for item in value]
    return value


def _normalize_manager(value: Any) -> dict[str, Any] | None:
    """Every manager form seen in the wild, as `{"value": id, "$ref": ...}`; None removes it.

    Clients send the id alone; the `$ref` that scim2-models requires is derived from it
    (the bridge renders the absolute URL on the way out), and an id is derived from a
    `$ref` sent alone.
    """
    if isinstance(value, list):
        value = value[0] if value else None
    ref = None
    if isinstance(value, dict):
        ref = value.get("$ref")
        value = value.get("value", value.get("managerId"))
        if (value is None or str(value).strip() == "") and isinstance(ref, str) and ref.strip():
            value = ref.rstrip("/").rsplit("/", 1)[-1]
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    return {"value": text, "$ref": ref if isinstance(ref, str) and ref else f"../Users/{text}"}


def _boolean(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value
