"""Schema extensions an admin declares in a mapping file (RFC 7643 §3.3).

```toml
[extensions."urn:ietf:params:scim:schemas:extension:employment:2.0:User"]
name = "Employment"
description = "What HR knows of the job"
[extensions."urn:ietf:params:scim:schemas:extension:employment:2.0:User".attributes]
startDate = { type = "dateTime", description = "The first working day" }
costCenter = "string"
```

Each declaration becomes a scim2-models Extension class (`Extension.from_schema`), so the
resource model validates it, filters and PATCH paths resolve through it, and discovery
(`/Schemas`, `/ResourceTypes`) announces it, exactly as for the enterprise extension. Its
attributes are then mapped like any other, under the URN in `[users.attributes]`.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import create_model, field_validator
from scim2_models import Attribute, EnterpriseUser, Extension, Mutability, Required, Schema

from .suggest import unknown_key
from .user import User

TYPES = {
    "string": Attribute.Type.string,
    "boolean": Attribute.Type.boolean,
    "integer": Attribute.Type.integer,
    "decimal": Attribute.Type.decimal,
    "dateTime": Attribute.Type.date_time,
    "binary": Attribute.Type.binary,
}
ATTRIBUTE_KEYS = ("type", "description", "multi_valued", "required", "case_exact", "canonical")
EXTENSION_KEYS = ("name", "description", "attributes")
RESERVED = frozenset(
    {
        "urn:ietf:params:scim:schemas:core:2.0:user",
        "urn:ietf:params:scim:schemas:core:2.0:group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user",
    }
)
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
"""RFC 7643 §2.1: ATTRNAME = ALPHA *(nameChar)."""
_URN = re.compile(r"urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+", re.IGNORECASE)
_TAKEN_NAMES = frozenset(
    name.lower()
    for field_name, info in User.model_fields.items()
    for name in (field_name, info.serialization_alias or field_name)
) | {"user", EnterpriseUser.__name__.lower()}
"""Names an extension cannot take, lower-case: its name becomes a field of the User model
beside these (Python's `user_name` and the schema's `userName`), and one of them would hide
the other; RFC 7643 §2.1 compares attribute names case-insensitively, and `User` is the
resource type the extension extends."""


@dataclass(frozen=True)
class DeclaredExtension:
    """An extension of the User resource (scim2-models' Group takes no extensions)."""

    urn: str
    model: type[Extension]
    canonical: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The allowed values of its attributes that declare some, by lower-case name: the
    model only announces them (scim2-models takes them as suggestions, RFC 7643 §7),
    so the mapping enforces them on writes."""


Problem = Callable[[str, str], None]
"""Reports one problem: (key path, what is wrong)."""


def declared_extensions(table: Any, problem: Problem) -> list[DeclaredExtension]:
    """The `[extensions]` table's declarations; each mistake reported through `problem`."""
    if not isinstance(table, dict):
        problem("extensions", "must be a table of schema URNs")
        return []
    declared: list[DeclaredExtension] = []
    urns: dict[str, str] = {}
    names: dict[str, str] = {}
    for urn, body in table.items():
        key = f'extensions."{urn}"'
        earlier = _spelled_before(urns, urn, key)
        if earlier is not None:
            # scim2-models reads a schema URN in any case (RFC 7643 §2.1), so two
            # spellings would be one key of every payload.
            problem(
                key,
                f"names the same schema as {earlier}: schema URNs compare "
                "case-insensitively, declare it once",
            )
            continue
        found = _declaration(urn, body, key, problem)
        if found is not None and _own_name(found, body, key, names, problem):
            declared.append(found)
    return declared


def _spelled_before(seen: dict[str, str], name: str, key: str) -> str | None:
    """The key that declared `name` before, in any case; None, and `key` remembered as
    its declaration, when it is the first."""
    earlier = seen.get(name.lower())
    if earlier is None:
        seen[name.lower()] = key
    return earlier


def _own_name(
    found: DeclaredExtension, body: Any, key: str, names: dict[str, str], problem: Problem
) -> bool:
    """Whether the extension's name is free: it becomes the name of a field of the User
    model, and a second field of that name hides the first (the extension's attributes,
    or `title`, are then silently unknown)."""
    name = found.model.__name__
    given = "" if "name" in body else " (derived from the URN: give it a name)"
    if name in names:
        problem(
            f"{key}.name",
            f"{name!r} is also the name of {names[name]}{given}: "
            "each extension needs a name of its own",
        )
        return False
    if name.lower() in _TAKEN_NAMES:
        problem(
            f"{key}.name",
            f"{name!r} is the name of an attribute or schema of User{given}: choose another",
        )
        return False
    names[name] = key
    return True


def _default_name(urn: str) -> str:
    """The name of an extension that gives none: its last part that is neither a version
    nor a resource type (`hr` of `urn:example:params:scim:schemas:extension:hr:2.0:User`,
    `acme` of `urn:ietf:params:scim:schemas:extension:acme:User`)."""
    parts = urn.split(":")
    named = [part for part in parts[1:] if part and not _VERSION_OR_TYPE.fullmatch(part)]
    return named[-1] if named else parts[-1]


_VERSION_OR_TYPE = re.compile(r"\d+(?:\.\d+)*|User|Group", re.IGNORECASE)


def _declaration(urn: str, body: Any, key: str, problem: Problem) -> DeclaredExtension | None:
    problems_before = _Counter(problem)
    report = problems_before.report
    if not _URN.fullmatch(urn):
        report(key, "the schema id must be a URN (urn:...:2.0:User)")
    elif urn.lower() in RESERVED:
        report(key, "is a schema of RFC 7643 already; declare an extension of your own")
    if not isinstance(body, dict):
        report(key, "must be a table with attributes")
        return None
    for name in body:
        if name not in EXTENSION_KEYS:
            report(f"{key}.{name}", unknown_key(name, EXTENSION_KEYS))
    name = body.get("name", _default_name(urn))
    if not isinstance(name, str) or not name.strip():
        report(f"{key}.name", "must be a non-empty string")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        report(f"{key}.description", "must be a string")
    declared = body.get("attributes")
    if not isinstance(declared, dict) or not declared:
        report(f"{key}.attributes", "must be a table declaring at least one attribute")
        declared = {}
    attributes: list[Attribute] = []
    spelled: dict[str, str] = {}
    for attr_name, spec in declared.items():
        attr_key = f"{key}.attributes.{attr_name}"
        earlier = _spelled_before(spelled, attr_name, attr_key)
        if earlier is not None:
            report(
                attr_key,
                f"names the same attribute as {earlier}: "
                "attribute names compare case-insensitively (RFC 7643 §2.1)",
            )
            continue
        attribute = _attribute(attr_name, spec, attr_key, report)
        if attribute is not None:
            attributes.append(attribute)
    if problems_before.count:
        return None
    schema = Schema(id=urn, name=str(name), description=description, attributes=attributes)
    canonical = {
        attribute.name.lower(): tuple(attribute.canonical_values)
        for attribute in attributes
        if attribute.name and attribute.canonical_values
    }
    return DeclaredExtension(urn, _dates_as_text(Extension.from_schema(schema)), canonical)


def _dates_as_text(model: type[Extension]) -> type[Extension]:
    """The extension's model, refusing a number for a dateTime attribute.

    pydantic reads a number as a Unix timestamp: `"startDate": 20260301` became
    1970-08-23 and was stored as such. A dateTime is an xsd:dateTime string (RFC 7643
    §2.3.5); a number is a client's mistake, answered 400 invalidValue.
    """
    dated = [name for name, spec in model.model_fields.items() if _holds_instants(spec.annotation)]
    if not dated:
        return model
    check = field_validator(*dated, mode="before")(_no_number_for_a_date)
    return create_model(model.__name__, __base__=model, __validators__={"_dates_as_text": check})


def _holds_instants(annotation: Any) -> bool:
    if annotation is datetime:
        return True
    return any(_holds_instants(each) for each in typing.get_args(annotation))


def _no_number_for_a_date(cls: Any, value: Any) -> Any:
    for each in value if isinstance(value, list) else [value]:
        # bool too (an int to Python); and a string of digits, which pydantic reads as
        # a timestamp as well (Entra sends every value as a string).
        if isinstance(each, int | float) or (isinstance(each, str) and _NUMBER.fullmatch(each)):
            raise ValueError("a dateTime is an ISO 8601 string (RFC 7643 §2.3.5), not a number")
    return value


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
"""A number written as text: no ISO 8601 date-time is one."""


def _attribute(name: str, spec: Any, key: str, report: Problem) -> Attribute | None:
    if not _ATTRIBUTE_NAME.fullmatch(name):
        report(key, "is not an attribute name (a letter, then letters, digits, _ or -)")
        return None
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        report(key, "must be a type name or a table with a type")
        return None
    for each in spec:
        if each not in ATTRIBUTE_KEYS:
            report(f"{key}.{each}", unknown_key(each, ATTRIBUTE_KEYS))
    type_name = spec.get("type")
    if type_name not in TYPES:
        report(f"{key}.type", f"must be one of {', '.join(TYPES)}, not {type_name!r}")
        return None
    flags = {}
    for flag in ("multi_valued", "required", "case_exact"):
        value = spec.get(flag, False)
        if not isinstance(value, bool):
            report(f"{key}.{flag}", "must be true or false")
        flags[flag] = value is True
    canonical = _canonical(spec.get("canonical"), type_name, f"{key}.canonical", report)
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        report(f"{key}.description", "must be a string")
        description = None
    return Attribute(
        name=name,
        type=TYPES[type_name],
        description=description,
        multi_valued=flags["multi_valued"],
        required=Required.true if flags["required"] else Required.false,
        case_exact=flags["case_exact"],
        canonical_values=canonical,
        mutability=Mutability.read_write,
    )


def _canonical(values: Any, type_name: str, key: str, report: Problem) -> list[str] | None:
    """The allowed values, strings of a string attribute: RFC 7643 §2.3.1 gives canonical
    values to strings only, and scim2-models holds them as strings."""
    if values is None:
        return None
    if type_name != "string":
        report(key, f"canonical values belong to string attributes, not {type_name}")
        return None
    if not isinstance(values, list) or not all(isinstance(each, str) for each in values):
        report(key, "must be a list of strings")
        return None
    if not values:
        report(key, "must list at least one value (or leave canonical out)")
        return None
    return values


class _Counter:
    """Counts the problems one declaration reports, passing them on."""

    def __init__(self, problem: Problem) -> None:
        self._problem = problem
        self.count = 0

    def report(self, key: str, text: str) -> None:
        self.count += 1
        self._problem(key, text)
