"""SCIM attribute paths as mapping keys name them, and reading values through them.

A key is resolved against the scim2-models resource model, so attribute names are
case-insensitive (RFC 7643 §2.1) and every target carries the schema spelling and the
canonical URN that filters resolve to as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from inspect import isclass
from typing import Any

from scim2_models import BaseModel, Path, Resource, Returned
from scim2_models.exceptions import InvalidPathException
from scim2_models.path import (
    AttributeBinding,
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    ValuePath,
)

from .suggest import attribute_paths, closest_path

BRIDGE_ATTRIBUTES = frozenset({"schemas", "id", "meta", "groups", "members"})
"""Attributes the bridge itself manages; a mapping may not claim them."""


class PathProblem(ValueError):
    """A mapping key that does not designate a mappable SCIM attribute."""


class ValueKind(StrEnum):
    """The SCIM data types (RFC 7643 §2.3) that transforms need to tell apart."""

    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "dateTime"
    BINARY = "binary"
    NUMBER = "number"


@dataclass(frozen=True, slots=True)
class Slot:
    """One entry of a multi-valued attribute, chosen by its type (`emails[type eq "work"]`)."""

    type: str
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved SCIM attribute: where it sits in SCIM JSON and what it holds."""

    urn: str
    """Canonical URN of the attribute, as filters resolve it (`...:User:emails.value`)."""
    schema: str
    """The schema declaring the attribute (core or extension URN)."""
    extension: bool
    """Whether the attribute lives under its extension's URN key in SCIM JSON."""
    attr: str
    """Schema spelling of the top-level attribute (`emails`)."""
    sub_attr: str | None
    """Schema spelling of the sub-attribute (`value`), if any."""
    multi_valued: bool
    """Whether the top-level attribute holds several values."""
    slot: Slot | None
    kind: ValueKind
    case_exact: bool
    secret: bool = False
    """`returned: never` (the password, RFC 7643 §7): its value is never repeated, not
    even to the client that sent it, in an error that may also reach a log."""


def never_returned(binding: AttributeBinding) -> bool:
    """Whether the attribute is `returned: never` (the User's password, RFC 7643 §7)."""
    model: Any = binding.model
    return model.get_field_annotation(binding.field_name, Returned) is Returned.never


def binding_kind(binding: AttributeBinding) -> ValueKind:
    target = binding.target_type
    if isclass(target):
        if issubclass(target, bool):
            return ValueKind.BOOLEAN
        if issubclass(target, datetime):
            return ValueKind.DATETIME
        if issubclass(target, bytes):
            return ValueKind.BINARY
        if issubclass(target, int | float):
            return ValueKind.NUMBER
    return ValueKind.STRING


def split_urn(binding: AttributeBinding) -> tuple[str, str, str | None]:
    """The schema, attribute and sub-attribute of a binding, in schema spelling."""
    schema: str = getattr(binding.model, "__schema__", "") or ""
    suffix = binding.urn[len(schema) + 1 :] if schema else binding.urn
    attr, _, sub_attr = suffix.partition(".")
    return schema, attr, sub_attr or None


def is_complex(binding: AttributeBinding) -> bool:
    return (
        binding.sub_field_name is None
        and isclass(binding.field_type)
        and issubclass(binding.field_type, BaseModel)
    )


def _slot_of(node: FilterNode, text: str) -> Slot:
    """Read `type eq "x"` or `type eq "x" and primary eq true`, the only slot filters."""
    terms: tuple[FilterNode, ...] = (node,)
    if isinstance(node, LogicalExpr) and node.op is LogicalOperator.and_:
        terms = node.terms
    slot_type: str | None = None
    primary = False
    for term in terms:
        if not (isinstance(term, Comparison) and term.op is CompareOperator.eq):
            break
        name = str(term.attr_path).lower()
        if name == "type" and slot_type is None and isinstance(term.value, str):
            slot_type = term.value
        elif name == "primary" and not primary and term.value is True:
            primary = True
        else:
            break
    else:
        if slot_type is not None:
            return Slot(slot_type, primary)
    raise PathProblem(
        f'\'{text}\': only [type eq "<type>"] or [type eq "<type>" and primary eq true] '
        "may select an entry"
    )


def resolve_target(model: type[Resource[Any]], text: str) -> Target:
    """Resolve a mapping key to the SCIM attribute it maps; PathProblem tells why not."""
    try:
        path = Path[model](text)  # type: ignore[valid-type]
        node = path.ast
    except InvalidPathException as exc:
        raise PathProblem(f"'{text}' is not a SCIM attribute path ({exc})") from exc
    if node is None or not isinstance(node, AttrPath | ValuePath):
        raise PathProblem(f"'{text}' is not a SCIM attribute path")
    slot = _slot_of(node.val_filter, text) if isinstance(node, ValuePath) else None
    binding = path.resolve()
    if binding is None:
        resource_type = str(model.__schema__).rsplit(":", 1)[-1]
        nearest = closest_path(text, attribute_paths(model, BRIDGE_ATTRIBUTES))
        meant = f" (did you mean '{nearest}'?)" if nearest is not None else ""
        raise PathProblem(f"unknown SCIM attribute '{text}' of {resource_type}{meant}")
    if binding.model is model and binding.field_name in BRIDGE_ATTRIBUTES:
        raise PathProblem(f"'{text}' is managed by the bridge and cannot be mapped")
    if is_complex(binding):
        # RFC 7643 §2.4: a complex attribute's main value is its `value` sub-attribute.
        with_value = Path[model](f"{text}.value").resolve()  # type: ignore[valid-type]
        if with_value is None:
            raise PathProblem(f"'{text}' is complex: map its sub-attributes instead")
        binding = with_value
    schema, attr, sub_attr = split_urn(binding)
    if slot is not None and not binding.is_multivalued:
        raise PathProblem(f"'{text}': only a multi-valued attribute has entries to select")
    if slot is not None and (sub_attr or "").lower() in {"type", "primary"}:
        raise PathProblem(f"'{text}': the entry's type and primary are set by its filter")
    if slot is None and binding.is_multivalued and sub_attr not in ("value", None):
        raise PathProblem(
            f"'{text}': select an entry to map this sub-attribute, "
            f"e.g. '{attr}[type eq \"work\"].{sub_attr}'"
        )
    return Target(
        urn=binding.urn,
        schema=schema,
        extension=binding.model is not model,
        attr=attr,
        sub_attr=sub_attr,
        multi_valued=binding.is_multivalued,
        slot=slot,
        kind=binding_kind(binding),
        case_exact=binding.case_exact,
        secret=never_returned(binding),
    )


def get_ci(container: Any, name: str) -> Any:
    """A dict entry by case-insensitive name (RFC 7643 §2.1), None when absent."""
    if not isinstance(container, Mapping):
        return None
    if name in container:
        return container[name]
    lowered = name.lower()
    for key, value in container.items():
        if key.lower() == lowered:
            return value
    return None


def attribute_value(resource: Mapping[str, Any], target: Target) -> Any:
    """The whole top-level attribute a target belongs to (a list for multi-valued ones)."""
    holder = get_ci(resource, target.schema) if target.extension else resource
    return get_ci(holder, target.attr)


def read_unslotted(resource: Mapping[str, Any], target: Target, first: str | None = None) -> Any:
    """The value at an unslotted target; a list of values for a multi-valued attribute,
    where the entry of type `first` (else the primary one) comes first when it is given."""
    value = attribute_value(resource, target)
    if target.multi_valued:
        if not isinstance(value, list):
            return None
        if first is not None:
            value = _lead_first(value, first)
        items = [get_ci(each, "value") if isinstance(each, Mapping) else each for each in value]
        return [each for each in items if each is not None] or None
    if target.sub_attr is not None:
        return get_ci(value, target.sub_attr)
    return value


def _lead_first(entries: list[Any], first: str) -> list[Any]:
    """`entries` with the one that stands first in front: the last one marked primary
    (an entry a client added or marked so comes after the one read back as primary),
    else the last of type `first`; the others keep their order."""
    wanted = first.lower()
    primary = [i for i, entry in enumerate(entries) if get_ci(entry, "primary") is True]
    types = [str(get_ci(entry, "type") or "").lower() for entry in entries]
    typed = [i for i, each in enumerate(types) if each == wanted]
    chosen = primary or typed
    if not chosen:
        return entries
    lead = chosen[-1]
    return [entries[lead], *entries[:lead], *entries[lead + 1 :]]
