"""PATCH operations on `members`, turned into member changes (RFC 7644 §3.5.2).

A group may hold 50,000 members. Applying `add members [X]` to a loaded resource would
read all of them and write them back; here it becomes `MemberChanges(added={X})`, and the
connector writes one value. Every member form the identity providers send is covered:
`add`/`replace` with a value list, `remove` through `members[value eq "X"]` (or an `or`
of such comparisons), `remove` with a value list (Entra), `remove` of every member, and
path-less `add`/`replace` whose value holds `members`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scim2_models import PatchOperation
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    ValuePath,
)

from bridge.errors import ScimError
from bridge.quirks import GROUP_SCHEMA
from connectors.base import MemberChanges

_MEMBERS_KEYS = {"members", f"{GROUP_SCHEMA.lower()}:members"}
_ADD = PatchOperation.Op.add
_REMOVE = PatchOperation.Op.remove
_REPLACE = PatchOperation.Op.replace_


class _Accumulator:
    """Member operations applied in order, as sets of ids."""

    def __init__(self) -> None:
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.replace: set[str] | None = None

    def add(self, ids: Iterable[str]) -> None:
        for each in ids:
            if self.replace is not None:
                self.replace.add(each)
            else:
                self.added.add(each)
                self.removed.discard(each)

    def remove(self, ids: Iterable[str]) -> None:
        for each in ids:
            if self.replace is not None:
                self.replace.discard(each)
            else:
                self.removed.add(each)
                self.added.discard(each)

    def replace_all(self, ids: Iterable[str]) -> None:
        self.replace = set(ids)
        self.added.clear()
        self.removed.clear()

    def changes(self) -> MemberChanges:
        return MemberChanges(
            added=frozenset(self.added),
            removed=frozenset(self.removed),
            replace=frozenset(self.replace) if self.replace is not None else None,
        )


def split_member_operations(
    operations: list[Any],
) -> tuple[list[Any], MemberChanges]:
    """Separate member operations from the others, which are applied to the resource."""
    others: list[Any] = []
    members = _Accumulator()
    for operation in operations:
        path = operation.path
        if path is None:
            remaining = _take_members_from_value(operation, members)
            if remaining is not None:
                others.append(remaining)
            continue
        node = path.ast if hasattr(path, "ast") else None
        if node is None or not _is_members(node):
            others.append(operation)
            continue
        _apply(operation, node, members)
    return others, members.changes()


_STAND_IN = [{"value": "scim-bridge-stand-in"}]
"""What scim2-models validates in place of the value list of a member removal."""


def lighten_member_removals(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[int, Any]]:
    """A PATCH body whose `remove` of `members` by a value list (Entra's form) carries a
    stand-in instead, for scim2-models to validate; and the lists taken, by place.

    scim2-models reads such a list as one filter, an `or` of a comparison per member, which
    it writes out and parses again: seconds for tens of thousands of members, holding the
    event loop (a body of 1 MB took 10 s). The ids are read here instead, in linear time,
    once restore_member_removals has put the lists back.
    """
    operations = payload.get("Operations")
    if not isinstance(operations, list):
        return payload, {}
    taken: dict[int, Any] = {}
    lightened: list[Any] = []
    for place, operation in enumerate(operations):
        if _removes_members_by_value(operation):
            taken[place] = operation["value"]
            operation = {**operation, "value": _STAND_IN}
        lightened.append(operation)
    return ({**payload, "Operations": lightened} if taken else payload), taken


def restore_member_removals(operations: list[Any], taken: dict[int, Any]) -> list[Any]:
    """The validated operations with the value lists lighten_member_removals took."""
    return [
        operation.model_copy(update={"value": taken[place]}) if place in taken else operation
        for place, operation in enumerate(operations)
    ]


def _removes_members_by_value(operation: Any) -> bool:
    if not isinstance(operation, dict) or str(operation.get("op", "")).lower() != "remove":
        return False
    path, value = operation.get("path"), operation.get("value")
    return (
        isinstance(path, str)
        and path.strip().lower() in _MEMBERS_KEYS
        and isinstance(value, list)
        and len(value) > 1
        and all(_plain_member(entry) for entry in value)
    )


_MEMBER_KEYS = {"value", "display", "$ref", "type"}
"""The sub-attributes of `members` (RFC 7643 §4.2)."""


def _plain_member(entry: Any) -> bool:
    """`{"value": "id"}` and the like: anything else is left to scim2-models, which
    refuses it (a value that is a list, a key that is no sub-attribute)."""
    return (
        isinstance(entry, dict)
        and bool(entry)
        and all(
            str(key).lower() in _MEMBER_KEYS
            and (each is None or (isinstance(each, str | int) and not isinstance(each, bool)))
            for key, each in entry.items()
        )
    )


def _is_members(node: Any) -> bool:
    """`members`, unqualified or qualified with the Group schema URN (RFC 7644 §3.10)."""
    attr = node.attr_path if isinstance(node, ValuePath) else node
    return (
        isinstance(attr, AttrPath)
        and (attr.uri is None or attr.uri.lower() == GROUP_SCHEMA.lower())
        and attr.attr.lower() == "members"
    )


def _apply(operation: Any, node: Any, members: _Accumulator) -> None:
    if isinstance(node, ValuePath):
        if operation.op != _REMOVE or node.sub_attr is not None:
            raise ScimError(
                400,
                "members: a filtered member path can only be removed",
                "invalidPath",
            )
        members.remove(_ids_selected_by(node.val_filter))
        return
    if node.sub_attr is not None:
        # Setting members.value on every member at once has no meaning for a group.
        raise ScimError(
            400, f"members.{node.sub_attr} cannot be changed; change members", "invalidPath"
        )
    ids = member_ids(operation.value)
    if operation.op == _ADD:
        members.add(ids)
    elif operation.op == _REPLACE:
        members.replace_all(ids)
    elif operation.value is None:
        members.replace_all(())
    else:
        members.remove(ids)


def _take_members_from_value(operation: Any, members: _Accumulator) -> Any | None:
    """Pull `members` out of a path-less add/replace; return what remains, if anything."""
    value = operation.value
    if not isinstance(value, dict):
        return operation
    keys = [k for k in value if k.lower() in _MEMBERS_KEYS]
    if not keys:
        return operation
    for key in keys:
        ids = member_ids(value[key])
        if operation.op == _REPLACE:
            members.replace_all(ids)
        else:
            members.add(ids)
    rest = {k: v for k, v in value.items() if k not in keys}
    return operation.model_copy(update={"value": rest}) if rest else None


def member_ids(value: Any) -> list[str]:
    """The user ids of a `members` value (a list of `{"value": id}`, or one of them)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    ids = []
    for item in items:
        if hasattr(item, "model_dump"):
            item = item.model_dump(by_alias=True, exclude_none=True)
        if isinstance(item, dict):
            # Attribute names are caseless (RFC 7643 §2.1): `{"Value": ...}` is a member too.
            keys = {str(key).lower(): each for key, each in item.items()}
            if str(keys.get("type") or "User").lower() != "user":
                raise ScimError(
                    400, "members: only users can be members of a group", "invalidValue"
                )
            item = keys.get("value")
        if item is None or str(item) == "":
            raise ScimError(400, "members: each member needs a value", "invalidValue")
        ids.append(str(item))
    return ids


def _ids_selected_by(node: FilterNode) -> list[str]:
    """The ids a `members[...]` filter names: `value eq "X"`, or an `or` of those."""
    if (
        isinstance(node, Comparison)
        and node.op == CompareOperator.eq
        and node.attr_path.attr.lower() == "value"
        and node.attr_path.sub_attr is None
    ):
        return [str(node.value)]
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.or_:
        return [each for term in node.terms for each in _ids_selected_by(term)]
    raise ScimError(
        400,
        'members: select the members to remove with value eq "id" (joined by or)',
        "invalidFilter",
    )
