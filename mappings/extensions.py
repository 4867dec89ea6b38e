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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scim2_models import Attribute, Extension, Mutability, Required, Schema

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


@dataclass(frozen=True)
class DeclaredExtension:
    """An extension of the User resource (scim2-models' Group takes no extensions)."""

    urn: str
    model: type[Extension]


Problem = Callable[[str, str], None]
"""Reports one problem: (key path, what is wrong)."""


def declared_extensions(table: Any, problem: Problem) -> list[DeclaredExtension]:
    """The `[extensions]` table's declarations; each mistake reported through `problem`."""
    if not isinstance(table, dict):
        problem("extensions", "must be a table of schema URNs")
        return []
    declared: list[DeclaredExtension] = []
    for urn, body in table.items():
        found = _declaration(urn, body, f'extensions."{urn}"', problem)
        if found is not None:
            declared.append(found)
    return declared


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
            report(f"{key}.{name}", f"unknown key (valid: {', '.join(EXTENSION_KEYS)})")
    name = body.get("name", urn.rsplit(":", 2)[-2] if urn.count(":") >= 2 else urn)
    if not isinstance(name, str) or not name.strip():
        report(f"{key}.name", "must be a non-empty string")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        report(f"{key}.description", "must be a string")
    declared = body.get("attributes")
    if not isinstance(declared, dict) or not declared:
        report(f"{key}.attributes", "must be a table declaring at least one attribute")
        declared = {}
    attributes = [
        attribute
        for attr_name, spec in declared.items()
        if (attribute := _attribute(attr_name, spec, f"{key}.attributes.{attr_name}", report))
        is not None
    ]
    if problems_before.count:
        return None
    schema = Schema(id=urn, name=str(name), description=description, attributes=attributes)
    return DeclaredExtension(urn, Extension.from_schema(schema))


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
            report(f"{key}.{each}", f"unknown key (valid: {', '.join(ATTRIBUTE_KEYS)})")
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
    canonical = spec.get("canonical")
    if canonical is not None and not (
        isinstance(canonical, list) and all(isinstance(each, str) for each in canonical)
    ):
        report(f"{key}.canonical", "must be a list of strings")
        canonical = None
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


class _Counter:
    """Counts the problems one declaration reports, passing them on."""

    def __init__(self, problem: Problem) -> None:
        self._problem = problem
        self.count = 0

    def report(self, key: str, text: str) -> None:
        self.count += 1
        self._problem(key, text)
