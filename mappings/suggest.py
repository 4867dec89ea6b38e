"""What an admin most likely meant by a name a mapping or configuration file misspells.

A mapping is edited by hand, and a slip (`givenNme`, `refrence`) is refused at start-up:
the error names the nearest valid spelling, so that the fix is read off the message
rather than looked up (connectors.spelling). A SCIM attribute path, which has many more
neighbours than a table's keys, must be nearer (`surname` is not `userName`); compared
without case (SCIM attribute names are case-insensitive, RFC 7643 §2.1).
"""

from __future__ import annotations

import typing
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from inspect import isclass
from typing import Any

from pydantic import BaseModel
from scim2_models import Extension

from connectors.spelling import closest

PATH_NEAR = 0.7
"""difflib's similarity ratio from which an attribute path is offered as the one meant
(a key's is connectors.spelling's)."""


def unknown_key(name: str, valid: Sequence[str]) -> str:
    """The problem of a key a table does not take: the one meant, when near, then all."""
    nearest = closest(name, valid)
    meant = f"did you mean '{nearest}'? " if nearest is not None else ""
    return f"unknown key ({meant}valid: {', '.join(valid)})"


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BACKEND_WORDS = {
    "sn": "name.familyName",
    "surname": "name.familyName",
    "lastname": "name.familyName",
    "last_name": "name.familyName",
    "firstname": "name.givenName",
    "first_name": "name.givenName",
    "mail": "emails",
    "email": "emails",
    "phone": "phoneNumbers",
    "telephonenumber": "phoneNumbers",
    "mobile": "phoneNumbers",
    "uid": "userName",
    "login": "userName",
    "dept": f"{ENTERPRISE}:department",
    "employeeid": f"{ENTERPRISE}:employeeNumber",
    "employee_id": f"{ENTERPRISE}:employeeNumber",
    "cn": "displayName",
}
"""A directory's or an HR table's word for a SCIM attribute, written where the SCIM path
goes (the mapping's key is the SCIM side, its value the backend's)."""


def closest_path(text: str, paths: Iterable[str]) -> str | None:
    """The attribute path nearest to `text`: by its last name among the paths that share
    the rest (`name.givenNme`, `urn:...:User:employeNumber`), so that a long common
    prefix does not make every sibling look near; else by the whole path."""
    paths = list(paths)
    cut = max(text.rfind("."), text.rfind(":"))
    if cut > 0:
        prefix = text[: cut + 1].lower()
        siblings = {path[cut + 1 :]: path for path in paths if path.lower().startswith(prefix)}
        leaf = closest(text[cut + 1 :], [name for name in siblings if name], PATH_NEAR)
        if siblings:
            return siblings[leaf] if leaf is not None else None
        return closest(text, paths, PATH_NEAR)
    known = {path.lower(): path for path in paths}
    meant = known.get(BACKEND_WORDS.get(text.lower(), "").lower())
    if meant is not None:
        return meant
    # A bare name may be a sub-attribute's or an extension's (`givenName`, `department`).
    by_name = {path: path for path in paths}
    leaves = Counter(_leaf(path).lower() for path in paths)
    by_name |= {_leaf(path): path for path in paths if leaves[_leaf(path).lower()] == 1}
    found = closest(text, by_name, PATH_NEAR)
    return by_name[found] if found is not None else None


def _leaf(path: str) -> str:
    return path[max(path.rfind("."), path.rfind(":")) + 1 :]


def attribute_paths(model: type[BaseModel], leave_out: Collection[str] = ()) -> list[str]:
    """Every attribute and sub-attribute path of a resource model as a mapping writes it:
    `name.givenName`, and an extension's as `urn:...:User:manager.value`; without the
    attributes `leave_out` names (and the extensions' `schemas`)."""
    paths: list[str] = []
    for name, field in model.model_fields.items():
        inner = _model_of(field.annotation)
        alias = field.serialization_alias or name
        if inner is not None and issubclass(inner, Extension):
            urn = inner.__schema__
            paths += [f"{urn}:{path}" for path in attribute_paths(inner, {"schemas"})]
        elif alias not in leave_out:
            paths += _fields_of(alias, inner)
    return paths


def _fields_of(alias: str, inner: type[BaseModel] | None) -> list[str]:
    """`alias` and, for a complex attribute, each of its sub-attributes."""
    if inner is None:
        return [alias]
    subs = inner.model_fields.items()
    return [alias, *(f"{alias}.{sub.serialization_alias or name}" for name, sub in subs)]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (through Optional and list), or None for a plain value."""
    if isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_of(argument)
        if found is not None:
            return found
    return None
