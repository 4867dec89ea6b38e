"""What the operations of a PATCH name: each attribute they write, and whether they clear it.

Applying a PATCH to the resource read from the backend shows what changed, except where
that resource cannot: a `returned: never` attribute (the User's password, RFC 7643 §4.1.1)
is never read, so removing it changes nothing there; and a value the mapping derives (a
templated default such as `displayName`) looks the same whether a client set it again or
left it alone. Both need what the operations themselves name (RFC 7644 §3.5.2).

Names are canonical attribute URNs, lower-cased as attribute names are caseless (RFC 7643
§2.1): `urn:ietf:params:scim:schemas:core:2.0:user:name.familyname`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from scim2_models import PatchOperation


def named(
    operations: Iterable[PatchOperation[Any]], core_schema: str, extensions: Collection[str]
) -> dict[str, bool]:
    """The attributes the operations write, each with whether its last operation clears
    it (a `remove`, or a value of null or ""; RFC 7643 §2.5: unassigned). `extensions`:
    the URNs of the resource type's extensions, lower-cased.

    A complex attribute given as an object names its sub-attributes, which the others
    keep (RFC 7644 §3.5.2.1, §3.5.2.3); given as null or removed, it names itself.
    Member operations and paths naming no attribute of the resource name nothing.
    """
    found: dict[str, bool] = {}
    for operation in operations:
        removes = operation.op.value == "remove"
        if operation.path is not None:
            binding = operation.path.resolve()
            if binding is not None:
                _name(found, binding.urn, operation.value, removes)
        elif isinstance(operation.value, dict):
            for key, item in operation.value.items():
                _name_key(found, str(key), item, core_schema, extensions)
    return found


def _name_key(
    found: dict[str, bool], key: str, item: Any, core_schema: str, extensions: Collection[str]
) -> None:
    """A key of a path-less value: an attribute (`name`, `name.familyName`), an
    extension's URN holding its attributes, or an extension attribute's full URN."""
    if key.lower() in extensions or key.lower() == core_schema.lower():
        if isinstance(item, dict):  # a schema's attributes, under its URN
            for name, value in item.items():
                _name(found, f"{key}:{name}", value, removes=False)
        return
    urn = key if key.lower().startswith("urn:") else f"{core_schema}:{key}"
    _name(found, urn, item, removes=False)


def _name(found: dict[str, bool], urn: str, value: Any, removes: bool) -> None:
    if isinstance(value, dict) and not removes and "." not in urn.rsplit(":", 1)[-1]:
        for sub, item in value.items():
            found[f"{urn}.{sub}".lower()] = _clears(item)
        return
    found[urn.lower()] = removes or _clears(value)


def _clears(value: Any) -> bool:
    return value is None or value == "" or value == []
