"""`"{name.givenName} {name.familyName}"`: values computed from other SCIM attributes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scim2_models import Resource

from .paths import PathProblem, Target, attribute_value, get_ci, read_unslotted, resolve_target

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SPACES = re.compile(r"\s+")


class TemplateProblem(ValueError):
    """A template whose braces do not pair up, or that has no placeholder."""


def is_template(text: str) -> bool:
    """Whether a value is written in template syntax: any brace makes it one, so that a
    default with a typo (`"{userName"`) is refused rather than stored as it stands."""
    return "{" in text or "}" in text


def _check_braces(text: str) -> None:
    """Refuse braces that do not pair up: the placeholder pattern would skip them, and
    the value would silently be missing or carry a stray brace."""
    opened: int | None = None
    for position, char in enumerate(text):
        if char == "{":
            if opened is not None:
                raise TemplateProblem(
                    f"{text!r}: the '{{' at character {opened + 1} is not closed "
                    f"before the next one"
                )
            opened = position
        elif char == "}":
            if opened is None:
                raise TemplateProblem(
                    f"{text!r}: the '}}' at character {position + 1} closes no '{{'"
                )
            opened = None
    if opened is not None:
        raise TemplateProblem(f"{text!r}: the '{{' at character {opened + 1} is never closed")


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
        """Resolve every placeholder; PathProblem names the first one that is no attribute,
        TemplateProblem a brace out of place or a text without placeholder."""
        _check_braces(text)
        if _PLACEHOLDER.search(text) is None:
            raise TemplateProblem(
                f"{text!r} has no {{placeholder}}: a value the same for every record "
                f"is a constant (constant = {json.dumps(text, ensure_ascii=False)})"
            )
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
