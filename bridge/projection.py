"""`attributes` and `excludedAttributes` applied to a rendered resource (RFC 7644 §3.9).

Applied to the SCIM JSON the bridge renders rather than through a model round trip: a
legacy backend may hold values (an email without a dot) that a validating model would
refuse, and a read must never fail because of what is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_ALWAYS_RETURNED = {"id", "schemas"}
"""RFC 7643 §7: `returned: always` for the common attributes that carry identity."""


@dataclass(frozen=True)
class Projection:
    """Which attributes a response carries; built once per request."""

    attributes: tuple[tuple[str, ...], ...] = ()
    excluded: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def parse(
        cls,
        attributes: Iterable[str] | None,
        excluded: Iterable[str] | None,
        *,
        core: str,
        extensions: Iterable[str],
    ) -> Projection:
        ordered = sorted((urn.lower() for urn in extensions), key=len, reverse=True)
        return cls(
            tuple(_split(path, core.lower(), ordered) for path in attributes or ()),
            tuple(_split(path, core.lower(), ordered) for path in excluded or ()),
        )

    def wants(self, name: str) -> bool:
        """Whether the top-level (core) attribute `name` is part of the response."""
        key = (name.lower(),)
        if self.attributes:
            return any(
                path[: len(key)] == key or key[: len(path)] == path for path in self.attributes
            )
        return key not in self.excluded

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        if self.attributes:
            return _with_schemas_present(resource, _keep(resource, self.attributes, depth=0))
        if self.excluded:
            return _with_schemas_present(resource, _drop(resource, self.excluded))
        return resource


def _with_schemas_present(whole: dict[str, Any], shown: dict[str, Any]) -> dict[str, Any]:
    """`schemas` names the extensions the response still holds (RFC 7643 §3): one whose
    attributes were all left out goes from the list with its object."""
    gone = {key.lower() for key in whole if key.lower().startswith("urn:")} - {
        key.lower() for key in shown
    }
    schemas = shown.get("schemas")
    if gone and isinstance(schemas, list):
        shown["schemas"] = [urn for urn in schemas if str(urn).lower() not in gone]
    return shown


def _split(path: str, core: str, extensions: list[str]) -> tuple[str, ...]:
    """`urn:...:User:manager.value` -> ("urn:...:user", "manager", "value").

    A path qualified with the core schema URN is the same as the unqualified one.
    """
    lowered = path.strip().lower()
    if lowered.startswith(core + ":"):
        return tuple(lowered[len(core) + 1 :].split("."))
    for urn in extensions:
        if lowered == urn:
            return (urn,)
        if lowered.startswith(urn + ":"):
            return (urn, *lowered[len(urn) + 1 :].split("."))
    return tuple(lowered.split("."))


def _keep(node: dict[str, Any], paths: tuple[tuple[str, ...], ...], depth: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in node.items():
        lowered = key.lower()
        if depth == 0 and lowered in _ALWAYS_RETURNED:
            result[key] = value
            continue
        matching = tuple(path for path in paths if path and path[0] == lowered)
        if not matching:
            continue
        if any(len(path) == 1 for path in matching):
            result[key] = value
            continue
        rest = tuple(path[1:] for path in matching)
        if isinstance(value, dict):
            kept = _keep(value, rest, depth + 1)
            if kept:
                result[key] = kept
        elif isinstance(value, list):
            items = [_keep(item, rest, depth + 1) for item in value if isinstance(item, dict)]
            if any(items):
                result[key] = [item for item in items if item]
    return result


def _drop(node: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in node.items():
        lowered = key.lower()
        matching = tuple(path for path in paths if path and path[0] == lowered)
        if lowered in _ALWAYS_RETURNED or not matching:
            result[key] = value
            continue
        if any(len(path) == 1 for path in matching):
            continue
        rest = tuple(path[1:] for path in matching)
        if isinstance(value, dict):
            kept = _drop(value, rest)
            if kept:  # an object whose every attribute was left out is left out
                result[key] = kept
        elif isinstance(value, list):
            items = [_drop(item, rest) if isinstance(item, dict) else item for item in value]
            listed = [item for item in items if item != {}]  # 0, false and "" are values
            if listed:
                result[key] = listed
        else:
            result[key] = value
    return result
