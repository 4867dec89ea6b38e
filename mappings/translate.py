"""Resources to backend values and back, and the difference between two backend states."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .paths import Slot, Target, attribute_value, get_ci, read_unslotted
from .rules import OMIT, Rule, RuleSet
from .templates import Template


def _missing(value: Any) -> bool:
    return value is None or value == "" or value == []


def assign_slots(entries: Any, slots: list[Slot]) -> dict[Slot, Mapping[str, Any]]:
    """Which entry of a multi-valued attribute fills which slot.

    Typed entries go first, primary ones before the others (RFC 7643 §2.4: the preferred
    value), each to a slot of its type, so the primary work email wins a single work slot.
    Entries without a type then fill the slots left, in mapping order. An untyped primary
    entry that finds none left takes the first slot held by an entry that is not primary:
    it is what `replace emails[primary eq true].value` creates on a user whose one stored
    email is not marked primary, and it must replace that email, not be dropped beside it.
    The rest is ignored, because the backend has nowhere to keep it.
    """
    if not isinstance(entries, list):
        return {}
    valid = [entry for entry in entries if isinstance(entry, Mapping)]
    valid.sort(key=lambda entry: get_ci(entry, "primary") is not True)
    filled: dict[Slot, Mapping[str, Any]] = {}
    for entry in (entry for entry in valid if _typed(entry)):
        entry_type = str(get_ci(entry, "type")).lower()
        free = [s for s in slots if s.type.lower() == entry_type and s not in filled]
        is_primary = get_ci(entry, "primary") is True
        chosen = next((s for s in free if s.primary == is_primary), free[0] if free else None)
        if chosen is not None:
            filled[chosen] = entry
    for entry in (entry for entry in valid if not _typed(entry)):
        chosen = next((s for s in slots if s not in filled), None)
        if chosen is None and get_ci(entry, "primary") is True:
            chosen = next((s for s in slots if get_ci(filled[s], "primary") is not True), None)
        if chosen is not None:
            filled[chosen] = entry
    return filled


def _typed(entry: Mapping[str, Any]) -> bool:
    entry_type = get_ci(entry, "type")
    return isinstance(entry_type, str) and bool(entry_type)


def to_backend(
    ruleset: RuleSet,
    resource: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    *,
    previous: Mapping[str, Any] | None = None,
    defaults: bool = True,
) -> dict[str, Any]:
    """Every stored field's value for a SCIM resource; see ResourceMapping.to_backend."""
    slotted: dict[tuple[str, str], dict[Slot, Mapping[str, Any]]] = {}
    for rules in ruleset.attributes():
        slots = RuleSet.slots(rules)
        if slots:
            target = rules[0].target
            entries = attribute_value(resource, target)
            slotted[(target.schema, target.attr)] = assign_slots(entries, slots)
    values: dict[str, Any] = {}
    for rule in ruleset.rules:
        if rule.field is None:
            continue
        if rule.constant is not None:
            values[rule.field] = rule.encode(rule.constant)
            continue
        value = _scim_value(rule, resource, slotted)
        stored = current.get(rule.field) if current is not None else None
        if rule.bit is not None:
            if _missing(value) and stored is not None:
                values[rule.field] = stored
                continue
            if _missing(value):
                value = rule.default if rule.default is not None else not rule.bit_set
            values[rule.field] = rule.encode_flags(value, stored)
            continue
        sent = not _missing(value)
        if not sent and defaults and rule.default is not None:
            if stored is not None and not _derived(rule, stored, previous):
                values[rule.field] = stored
                continue
            value = (
                rule.default.render(resource)
                if isinstance(rule.default, Template)
                else rule.default
            )
        if _missing(value):
            values[rule.field] = rule.empty
            continue
        values[rule.field] = encoded = rule.encode(value, stored)
        if sent and rule.empty is not None and encoded == rule.empty:
            # It would read back as no value (to_scim compares it so): the client's value
            # lost under a 2xx. A default that renders it is the mapping's, and stays.
            raise rule.translation_error(
                value, "is what this service stores for no value here, so it cannot be stored"
            )
    return values


def rederived(
    ruleset: RuleSet,
    before_values: Mapping[str, Any],
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    named: Mapping[str, bool],
) -> dict[str, Any]:
    """The stored values of templated defaults derived again after a PATCH: each one
    `before_values` holds as its template made it of `before`, and that no operation
    named (`named`: attribute URNs, see bridge.patch_targets), rendered from `after`.
    So a PATCH renaming a user moves its displayName along, as a PUT does, and one
    removing every name it was made of clears it (its `empty` stand-in); one the client
    set, or names in this PATCH, stays as it is."""
    values: dict[str, Any] = {}
    for rule in ruleset.rules:
        if rule.field is None or not isinstance(rule.default, Template):
            continue
        if _named(rule.target, named) is not None:
            continue
        if not _derived(rule, before_values.get(rule.field), before):
            continue
        rendered = rule.default.render(after)
        # Nothing left to render it of (both names removed): cleared, as a PUT without
        # them clears it, rather than left showing the names the PATCH removed.
        values[rule.field] = rule.empty if _missing(rendered) else rule.encode(rendered)
    return values


def cleared(ruleset: RuleSet, named: Mapping[str, bool]) -> dict[str, Any]:
    """The fields of `ruleset`'s rules that the operations `named` clear (None, or the
    rule's `empty` stand-in)."""
    return {
        rule.field: rule.empty
        for rule in ruleset.rules
        if rule.field is not None and _named(rule.target, named) is True
    }


def _named(target: Target, named: Mapping[str, bool]) -> bool | None:
    """Whether an operation names the attribute (itself, or the complex attribute
    holding it) and clears it; None when none names it."""
    urn = target.urn.lower()
    if urn in named:
        return named[urn]
    holder, dot, _ = urn.rpartition(".")
    if dot and ":" not in urn[len(holder) :] and holder in named:
        return named[holder]
    return None


def _derived(rule: Rule, stored: Any, previous: Mapping[str, Any] | None) -> bool:
    """Whether `stored` is what the rule's templated default made of `previous`: its
    rendering, or nothing when `previous` held nothing to render it of (a user created
    without names, whose names a PATCH then adds, gets its displayName as a POST with
    them would have)."""
    if previous is None or not isinstance(rule.default, Template):
        return False
    rendered = rule.default.render(previous)
    if _missing(rendered):
        return stored is None or bool(stored == rule.empty)
    return bool(rule.encode(rendered) == stored)


def _scim_value(
    rule: Rule,
    resource: Mapping[str, Any],
    slotted: Mapping[tuple[str, str], Mapping[Slot, Mapping[str, Any]]],
) -> Any:
    target = rule.target
    if rule.template is not None:
        return rule.template.render(resource)
    if target.slot is None:
        return read_unslotted(resource, target, rule.first)
    entry = slotted[(target.schema, target.attr)].get(target.slot)
    return get_ci(entry, target.sub_attr or "value")


class _ScimBuilder:
    """Places values into a SCIM resource dict, one entry per slot (RFC 7643 §2.4)."""

    def __init__(self) -> None:
        self.resource: dict[str, Any] = {}
        self._entries: dict[tuple[str, str, Slot], dict[str, Any]] = {}

    def place(self, target: Target, value: Any, first: str | None = None) -> None:
        holder = self.resource
        if target.extension:
            holder = holder.setdefault(target.schema, {})
        if target.slot is not None:
            slot = target.slot
            entry = self._entries.get((target.schema, target.attr, slot))
            if entry is None:
                entry = {"type": slot.type, **({"primary": True} if slot.primary else {})}
                self._entries[(target.schema, target.attr, slot)] = entry
                holder.setdefault(target.attr, []).append(entry)
            entry[target.sub_attr or "value"] = value
        elif target.multi_valued and target.sub_attr is None:
            holder[target.attr] = list(value)  # a list of simple values (RFC 7643 §2.4)
        elif target.multi_valued:
            entries: list[dict[str, Any]] = [{"value": item} for item in value]
            if first is not None and entries:
                entries[0] |= {"type": first, "primary": True}
            holder[target.attr] = entries
        elif target.sub_attr is not None:
            holder.setdefault(target.attr, {})[target.sub_attr] = value
        else:
            holder[target.attr] = value


def to_scim(ruleset: RuleSet, values: Mapping[str, Any]) -> dict[str, Any]:
    """A SCIM resource (without id, meta, schemas) from stored field values."""
    builder = _ScimBuilder()
    for rule in ruleset.rules:
        if rule.field is None or rule.constant is not None:
            continue
        stored = values.get(rule.field)
        if rule.empty is not None and stored == rule.empty:
            continue
        if _missing(stored):
            if rule.absent is not None:
                builder.place(rule.target, rule.absent)
            continue
        value = rule.decode(stored)
        if value is not OMIT:
            builder.place(rule.target, value, rule.first)
    # Computed attributes come last: templates name the attributes placed above, and a
    # constant is the same for every record whatever its field holds.
    for rule in ruleset.rules:
        if rule.field is not None and rule.constant is None:
            continue
        computed = (
            rule.constant if rule.template is None else rule.template.render(builder.resource)
        )
        if computed is not None:
            builder.place(rule.target, computed)
    return builder.resource


def _normalised(value: Any) -> Any:
    """A value as changes() compares it: no value is None, numbers read as their text.

    A backend column may hold 12 where the SCIM side renders "12"; writing it back
    would change nothing but the record's version.
    """
    if _missing(value):
        return None
    if isinstance(value, list | tuple):
        return tuple(_normalised(item) for item in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def changes(
    ruleset: RuleSet, before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, Any]:
    """The stored fields whose value differs; a cleared field maps to None."""
    return {
        field: after.get(field)
        for field in ruleset.stored_fields
        if _normalised(before.get(field)) != _normalised(after.get(field))
    }
