"""What discovery may announce (RFC 7643 §7): the attributes a mapping can store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .rules import RuleSet


@dataclass(frozen=True)
class AnnouncedAttribute:
    """One top-level SCIM attribute as far as the mapping supports it."""

    sub_attributes: frozenset[str] | None
    """Mapped sub-attributes of a complex attribute; None for a simple one."""
    canonical_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Sub-attribute -> the only values the backend can keep (the slots' types)."""
    read_only: bool = False
    """Computed by the mapping (template or constant): clients cannot write it."""
    always_present: bool = False
    """Every record has a value (an account state read from a lock or a flag), so the
    attribute is announced as required: a client cannot remove it, only change it."""
    unique: frozenset[str] = frozenset()
    """What the service keeps unique (`unique = true`, RFC 7643 §7 uniqueness "server"):
    "" for the attribute itself, else the names of its sub-attributes."""
    read_only_sub_attributes: frozenset[str] = frozenset()
    """Sub-attributes every rule of which is computed (`name.formatted` from a template)."""


def announced(ruleset: RuleSet) -> dict[str, dict[str, AnnouncedAttribute]]:
    """Schema URN -> attribute name (schema spelling) -> what is supported."""
    result: dict[str, dict[str, AnnouncedAttribute]] = {}
    for rules in ruleset.attributes():
        target = rules[0].target
        subs = [rule.target.sub_attr for rule in rules if rule.target.sub_attr is not None]
        slots = RuleSet.slots(rules)
        canonical: dict[str, tuple[str, ...]] = {}
        if slots:
            subs.append("type")
            canonical["type"] = tuple(dict.fromkeys(slot.type for slot in slots))
            if any(slot.primary for slot in slots):
                subs.append("primary")
        by_sub: dict[str, list[bool]] = {}
        for rule in rules:
            if rule.target.sub_attr is not None:
                by_sub.setdefault(rule.target.sub_attr, []).append(rule.read_only)
        result.setdefault(target.schema, {})[target.attr] = AnnouncedAttribute(
            sub_attributes=frozenset(subs) if subs else None,
            canonical_values=canonical,
            read_only=all(rule.read_only for rule in rules),
            always_present=any(rule.always_present for rule in rules),
            unique=frozenset(rule.target.sub_attr or "" for rule in rules if rule.unique),
            read_only_sub_attributes=frozenset(
                sub for sub, computed in by_sub.items() if all(computed)
            ),
        )
    return result
