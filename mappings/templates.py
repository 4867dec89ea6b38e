"""`"{name.givenName} {name.familyName}"`: values computed from other SCIM attributes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scim2_models import Resource

from .paths import PathProblem, Target, attribute_value, get_ci, read_unslotted, resolve_target

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SPACES = re.compile(r"\s+")


def is_template(text: str) -> bool:
    return _PLACEHOLDER.search(text) is not None


def read_single(resource: Mapping[str, Any], target: Target) -> Any:
    """The one value a target designates; for a slot, the first entry of the slot's type."""
    if target.slot is None:
        return read_unslotted(resource, target)
    entries = attribute_value(resource, target)
    if not isinstance(entries, list):
        return None
    for entry in entries:
        entry_type = get_ci(entry, "type")
        if isinstance(entry_type, str) and entry_type.lower() == target.slot.type.lower():
            return get_ci(entry, target.sub_attr or "value")
    return None


def _render(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class Template:
    text: str
    parts: tuple[str | Target, ...]

    @classmethod
    def parse(cls, model: type[Resource[Any]], text: str) -> Template:
        """Resolve every placeholder; PathProblem names the first one that is no attribute."""
        parts: list[str | Target] = []
        position = 0
        for match in _PLACEHOLDER.finditer(text):
            parts.append(text[position : match.start()])
            target = resolve_target(model, match.group(1).strip())
            if target.multi_valued and target.slot is None:
                raise PathProblem(f"'{match.group(1)}' holds several values: select one entry")
            parts.append(target)
            position = match.end()
        parts.append(text[position:])
        return cls(text, tuple(part for part in parts if part != ""))

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(part for part in self.parts if isinstance(part, Target))

    def render(self, resource: Mapping[str, Any]) -> str | None:
        """The text with whitespace collapsed, None when every referenced value is missing."""
        values = [read_single(resource, part) for part in self.targets]
        if all(value is None or value == "" for value in values):
            return None
        text = "".join(
            part if isinstance(part, str) else _render(read_single(resource, part))
            for part in self.parts
        )
        return _SPACES.sub(" ", text).strip() or None
