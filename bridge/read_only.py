"""Values of readOnly attributes in a POST or PUT body, ignored before validation.

RFC 7644 §3.5.1 (and §3.3 alike) has a service ignore what a client sends for a readOnly
attribute ("SHALL be ignored"). scim2-models ignores such values only once they validate:
a client that echoes back a resource it read, with `meta.created` of another form or an
`id` as a number, was refused 400 for values the service would never have used. They are
dropped here, with the readOnly sub-attributes of complex attributes (`groups`,
`manager.displayName`), in the core schema and in each extension.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from inspect import isclass
from typing import Any

from scim2_models import Mutability, Resource
from scim2_models.base import BaseModel


@dataclass(frozen=True)
class _ReadOnly:
    names: frozenset[str]
    """The model's readOnly attributes, lower-cased."""
    subs: dict[str, frozenset[str]]
    """For each complex attribute, its readOnly sub-attributes, lower-cased."""


def without_read_only(payload: dict[str, Any], model: type[Resource[Any]]) -> dict[str, Any]:
    """`payload` without the values of readOnly attributes (and sub-attributes)."""
    result = _without(payload, _read_only(model))
    for urn, extension in model.get_extension_models().items():
        for key, value in result.items():
            if key.lower() == urn.lower() and isinstance(value, dict):
                result[key] = _without(value, _read_only(extension))
    return result


def _without(values: dict[str, Any], read_only: _ReadOnly) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in values.items():
        name = key.lower()
        if name in read_only.names:
            continue
        subs = read_only.subs.get(name)
        if subs and isinstance(value, dict):
            value = _without_subs(value, subs)
        elif subs and isinstance(value, list):
            value = [_without_subs(v, subs) if isinstance(v, dict) else v for v in value]
        kept[key] = value
    return kept


def _without_subs(value: dict[str, Any], subs: frozenset[str]) -> dict[str, Any]:
    return {key: each for key, each in value.items() if key.lower() not in subs}


@functools.cache
def _read_only(model: type[BaseModel]) -> _ReadOnly:
    names: set[str] = set()
    subs: dict[str, frozenset[str]] = {}
    for field in model.model_fields:
        name = _attribute_name(model, field)
        if model.get_field_annotation(field, Mutability) == Mutability.read_only:
            names.add(name)
            continue
        complex_type = model.get_field_root_type(field)
        if isclass(complex_type) and issubclass(complex_type, BaseModel):
            inner = frozenset(
                _attribute_name(complex_type, sub)
                for sub in complex_type.model_fields
                if complex_type.get_field_annotation(sub, Mutability) == Mutability.read_only
            )
            if inner:
                subs[name] = inner
    return _ReadOnly(frozenset(names), subs)


def _attribute_name(model: type[BaseModel], field: str) -> str:
    """The attribute's SCIM name (its alias), lower-cased."""
    info = model.model_fields[field]
    return str(info.serialization_alias or info.alias or field).lower()
