"""SCIM filters (RFC 7644 §3.4.2.2), as scim2-models parses them, to backend conditions.

Every term is translated or refused with UntranslatableFilter: dropping one would widen
the query. Attributes resolve through scim2-models, so names are case-insensitive, may
carry their schema URN, and report whether they compare caseExact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scim2_models import Resource, ScimFilter
from scim2_models.exceptions import InvalidFilterException
from scim2_models.path import (
    AttributeBinding,
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

import connectors.base as backend
from connectors.base import (
    ENABLED_BY_LOCATION,
    BitSet,
    Compare,
    Condition,
    Constant,
    Membership,
    ObjectSpec,
    Op,
)

from .errors import TranslationError, UntranslatableFilter
from .names import NAME_ATTRIBUTE, composed, spellings
from .paths import Slot, ValueKind, never_returned, split_urn
from .rules import Rule, RuleSet

_EQUALITY = frozenset({CompareOperator.eq, CompareOperator.ne})
_META_FIELDS = {"created": "created", "lastmodified": "modified"}

_RESOURCE_TYPES = {backend.Kind.USERS: "User", backend.Kind.GROUPS: "Group"}
"""`meta.resourceType` of each kind (RFC 7643 §3.1): known without the backend, so a
filter on it (how a search at the root keeps one type, RFC 7644 §3.4.3) is a constant."""


def _is_resource_type(binding: AttributeBinding) -> bool:
    _, _, sub = split_urn(binding)
    return (sub or "").lower() == "resourcetype"


def all_of(terms: list[Condition]) -> Condition:
    """A conjunction with constants folded away (folding a `true` term drops nothing)."""
    kept: list[Condition] = []
    for term in terms:
        if isinstance(term, Constant):
            if not term.value:
                return term
            continue
        kept.extend(term.terms if isinstance(term, backend.And) else (term,))
    if not kept:
        return Constant(True)
    return kept[0] if len(kept) == 1 else backend.And(tuple(kept))


def any_of(terms: list[Condition]) -> Condition:
    """A disjunction with constants folded away."""
    kept: list[Condition] = []
    for term in terms:
        if isinstance(term, Constant):
            if term.value:
                return term
            continue
        kept.extend(term.terms if isinstance(term, backend.Or) else (term,))
    if not kept:
        return Constant(False)
    return kept[0] if len(kept) == 1 else backend.Or(tuple(kept))


def negate(term: Condition) -> Condition:
    if isinstance(term, Constant):
        return Constant(not term.value)
    if isinstance(term, backend.Not):
        return term.term
    return backend.Not(term)


def implies_present(term: Condition) -> bool:
    """Whether a condition can only hold when its fields have values (Compare semantics)."""
    if isinstance(term, Compare):
        return term.op is not Op.NE
    if isinstance(term, backend.Present):
        return True
    if isinstance(term, backend.And):
        return any(implies_present(each) for each in term.terms)
    if isinstance(term, backend.Or):
        return all(implies_present(each) for each in term.terms)
    return False


def compare_values(actual: Any, op: CompareOperator, expected: Any, case_exact: bool) -> bool:
    """Decide a comparison against a value the mapping knows (a constant, a slot's type)."""
    if isinstance(actual, str) and isinstance(expected, str) and not case_exact:
        actual, expected = actual.lower(), expected.lower()
    if op is CompareOperator.eq:
        return bool(actual == expected)
    if op is CompareOperator.ne:
        return bool(actual != expected)
    if not (isinstance(actual, str) and isinstance(expected, str)):
        return False
    outcome = {
        CompareOperator.co: expected in actual,
        CompareOperator.sw: actual.startswith(expected),
        CompareOperator.ew: actual.endswith(expected),
        CompareOperator.gt: actual > expected,
        CompareOperator.ge: actual >= expected,
        CompareOperator.lt: actual < expected,
        CompareOperator.le: actual <= expected,
    }
    return outcome[op]


def not_mapped(written: str) -> UntranslatableFilter:
    return UntranslatableFilter(f"'{written}' is not mapped to the backend")


def _refuse_never_returned(binding: AttributeBinding, written: str) -> None:
    """A `returned: never` attribute (the password) matches nothing a client may learn
    of: a filter on it would tell its value, one guess at a time (RFC 7643 §7)."""
    if never_returned(binding):
        raise UntranslatableFilter(f"'{written}' is never returned and cannot be filtered on")


def _boolean_operand(value: Any) -> bool:
    """true or false, as JSON or as the string some clients send ("True")."""
    return isinstance(value, bool) or (
        isinstance(value, str) and value.lower() in ("true", "false")
    )


def bad_operator(written: str, op: CompareOperator) -> UntranslatableFilter:
    return UntranslatableFilter(f"'{written}' cannot be compared with '{op.value}' by the backend")


class ConditionTranslator:
    """Translate one filter of one resource type."""

    def __init__(
        self,
        model: type[Resource[Any]],
        spec: ObjectSpec,
        ruleset: RuleSet,
        node: FilterNode,
        *,
        undeclared_is_false: bool = False,
    ) -> None:
        self.model = model
        self.undeclared_is_false = undeclared_is_false
        self.spec = spec
        self.ruleset = ruleset
        self.node = node
        try:
            self.filter: ScimFilter[Any] = ScimFilter[model](node)  # type: ignore[valid-type]
        except InvalidFilterException as exc:
            raise UntranslatableFilter(exc.detail or "invalid filter") from exc

    def translate(self) -> Condition:
        return self.visit(self.node)

    def visit(self, node: FilterNode) -> Condition:
        if self.undeclared_is_false and self._undeclared(node):
            # RFC 7644 §3.4.2.1: across resource types, an attribute a type does not have
            # evaluates to false on its resources.
            return Constant(False)
        if isinstance(node, LogicalExpr):
            terms = [self.visit(term) for term in node.terms]
            return all_of(terms) if node.op is LogicalOperator.and_ else any_of(terms)
        if isinstance(node, Not):
            return negate(self.visit(node.expr))
        if isinstance(node, Comparison):
            binding = self.filter.resolve_comparison(node.attr_path, strict=False)
            return self.comparison(binding, node)
        if isinstance(node, Present):
            return self.present(self.filter.resolve(node.attr_path, strict=False), node.attr_path)
        if isinstance(node, ValuePath):
            return self.value_path(node)
        raise UntranslatableFilter(f"unsupported filter expression '{node}'")

    def _undeclared(self, node: FilterNode) -> bool:
        if isinstance(node, Comparison):
            return self.filter.resolve_comparison(node.attr_path, strict=False) is None
        if isinstance(node, Present | ValuePath):
            return self.filter.resolve(node.attr_path, strict=False) is None
        return False

    # --- attributes the bridge manages --------------------------------------------

    def _bridge_attribute(self, binding: AttributeBinding) -> str | None:
        if binding.model is not self.model:
            return None
        if binding.field_name in {"id", "meta"}:
            return binding.field_name
        membership = "groups" if self.spec.kind is backend.Kind.USERS else "members"
        return membership if binding.field_name == membership else None

    def _meta_field(self, binding: AttributeBinding, written: str) -> str:
        _, _, sub = split_urn(binding)
        attribute = _META_FIELDS.get((sub or "").lower())
        field = getattr(self.spec, attribute) if attribute else None
        if field is None:
            raise not_mapped(written)
        return str(field)

    # --- comparisons -----------------------------------------------------------------

    def comparison(self, binding: AttributeBinding | None, node: Comparison) -> Condition:
        written = str(node.attr_path)
        if binding is None:
            raise not_mapped(written)
        _refuse_never_returned(binding, written)
        op, value = node.op, node.value
        managed = self._bridge_attribute(binding)
        if managed == "id":
            return Compare(self.spec.key, Op(op.value), value, case_exact=True)
        if managed == "meta" and _is_resource_type(binding):
            name = _RESOURCE_TYPES[self.spec.kind]
            return Constant(compare_values(name, op, value, binding.case_exact))
        if managed == "meta":
            return Compare(self._meta_field(binding, written), Op(op.value), value)
        schema, attr, sub = split_urn(binding)
        if managed is not None:
            if (sub or "").lower() != "value":
                raise not_mapped(written)
            if op not in _EQUALITY:
                raise bad_operator(written, op)
            return Membership(Op(op.value), None if value is None else str(value))
        rules = self.ruleset.for_attribute(schema, attr)
        complex_entries = rules and rules[0].several and rules[0].target.sub_attr is not None
        if any(rule.target.slot is not None for rule in rules) or complex_entries:
            inner = Comparison(AttrPath(sub or "value"), op, value)
            return self.entries(rules, inner, AttrPath(attr, None, node.attr_path.uri), written)
        # `manager eq "42"` compares the main value, as `emails eq` does (RFC 7643 §2.4).
        rule = next((r for r in rules if r.target.sub_attr == sub), None)
        if rule is None and sub is None:
            rule = next((r for r in rules if r.target.sub_attr == "value"), None)
        if rule is None:
            raise not_mapped(written)
        if isinstance(value, str) and self._names_the_resource(binding, sub):
            # Written in NFC by this service; found by `eq` in any form (mappings.names).
            forms = spellings(value) if op in _EQUALITY else [composed(value)]
            terms = [self.compare_rule(rule, op, f, written, binding.case_exact) for f in forms]
            return any_of(terms) if op is not CompareOperator.ne else all_of(terms)
        return self.compare_rule(rule, op, value, written, binding.case_exact)

    def _names_the_resource(self, binding: AttributeBinding, sub: str | None) -> bool:
        """Whether the comparison is on userName (users) or displayName (groups)."""
        _, attr, _ = split_urn(binding)
        named = attr == NAME_ATTRIBUTE[self.spec.kind]
        return binding.model is self.model and sub is None and named

    def compare_rule(
        self, rule: Rule, op: CompareOperator, value: Any, written: str, case_exact: bool
    ) -> Condition:
        if rule.target.kind is ValueKind.BOOLEAN and not _boolean_operand(value):
            # `active eq 1` would match nothing (or, with ne, everything) while the answer
            # says 200: a boolean compares to true or false (RFC 7644 §3.4.2.2).
            raise UntranslatableFilter(f"'{written}' compares to true or false, not {value!r}")
        if rule.constant is not None:
            return Constant(compare_values(rule.constant, op, value, case_exact))
        if rule.field is None:
            raise UntranslatableFilter(f"'{written}' is computed and cannot be filtered on")
        if (rule.reference or rule.value_map or rule.date_format) and op not in _EQUALITY:
            raise bad_operator(written, op)
        if rule.split is not None and op not in {CompareOperator.eq, CompareOperator.co}:
            raise bad_operator(written, op)
        if rule.reference is not None:
            return Compare(rule.field, Op(op.value), str(value), case_exact=True)
        if rule.bit is not None or rule.absent is not None:
            if op not in _EQUALITY or not isinstance(value, bool | str):
                raise bad_operator(written, op)
            equal = self.boolean_state(rule, value is True or str(value).lower() == "true")
            return equal if op is CompareOperator.eq else negate(equal)
        try:
            encoded = rule.encode_one(value)
        except TranslationError as exc:
            if rule.value_map is not None:
                # No stored value can be the image of an unmapped one.
                return Constant(op is CompareOperator.ne)
            raise UntranslatableFilter(str(exc)) from exc
        if rule.split is not None:
            return self.compare_parts(rule, op, str(encoded), written, case_exact)
        compared = Compare(rule.field, Op(op.value), encoded, case_exact)
        if rule.empty is None:
            return compared
        # The stand-in written for no value (`sn: -`) reads as no value: it matches what
        # a missing value matches (ne, the two-valued rule) and nothing else.
        stand_in = Compare(rule.field, Op.EQ, rule.empty, case_exact=True)
        if op is CompareOperator.ne:
            return any_of([compared, stand_in])
        return all_of([compared, negate(stand_in)])

    @staticmethod
    def compare_parts(
        rule: Rule, op: CompareOperator, encoded: str, written: str, case_exact: bool
    ) -> Condition:
        """`eq` or `co` on a multi-valued attribute held as one text with `split`.

        The attribute matches when one of its values does (RFC 7644 §3.4.2.2), and its
        values are the parts between separators, read without the spaces around them
        (Rule.decode). No part holds the separator, so an operand holding it matches
        nothing (`tags eq "a,b"`, `tags co ","`), where a test of the whole text would
        match across parts. Compare only sees the whole text, so `co` tests it for the
        operand alone: exact unless the operand could reach past a part's edge, into the
        spaces read away around it or into a separator of several characters, which is
        refused rather than answered wrong.
        """
        sep, field = str(rule.split), str(rule.field)
        if sep in encoded:
            return Constant(False)
        if op is CompareOperator.co:
            if encoded != encoded.strip() or any(
                encoded.startswith(sep[-size:]) or encoded.endswith(sep[:size])
                for size in range(1, len(sep))
            ):
                raise UntranslatableFilter(
                    f"'{written}' cannot be searched for {encoded!r}: its values are "
                    f"separated by {sep!r} and read without the spaces around them"
                )
            return Compare(field, Op.CO, encoded, case_exact)
        if encoded == "" or encoded != encoded.strip():
            # Parts are read trimmed and empty ones dropped: no value is this text.
            return Constant(False)
        # A part reads without the spaces around it (`a, b` holds `b`), as other
        # systems write lists: the part may follow the separator after a space.
        after = [sep] if sep.endswith(" ") else [sep, f"{sep} "]
        return any_of(
            [
                Compare(field, Op.EQ, encoded, case_exact),
                Compare(field, Op.SW, f"{encoded}{sep}", case_exact),
                *(Compare(field, Op.EW, f"{each}{encoded}", case_exact) for each in after),
                *(Compare(field, Op.CO, f"{each}{encoded}{sep}", case_exact) for each in after),
            ]
        )

    # --- presence ---------------------------------------------------------------------

    def present(self, binding: AttributeBinding | None, attr_path: AttrPath) -> Condition:
        written = str(attr_path)
        if binding is None:
            raise not_mapped(written)
        _refuse_never_returned(binding, written)
        managed = self._bridge_attribute(binding)
        schema, attr, sub = split_urn(binding)
        if managed == "id" or (managed == "meta" and (sub is None or _is_resource_type(binding))):
            return Constant(True)
        if managed == "meta":
            return backend.Present(self._meta_field(binding, written))
        if managed is not None:
            if sub is not None and sub.lower() != "value":
                raise not_mapped(written)
            return Membership(None, None)
        rules = self.ruleset.for_attribute(schema, attr)
        if not rules:
            raise not_mapped(written)
        slotted = any(rule.target.slot is not None for rule in rules)
        if sub is not None and (slotted or rules[0].several):
            inner = Present(AttrPath(sub))
            return self.entries(rules, inner, AttrPath(attr, None, attr_path.uri), written)
        chosen = [rule for rule in rules if sub is None or rule.target.sub_attr == sub]
        if not chosen:
            raise not_mapped(written)
        return any_of([self.present_rule(rule, written) for rule in chosen])

    @staticmethod
    def boolean_state(rule: Rule, wanted: bool) -> Condition:
        """The records whose boolean reads as `wanted` under a flags or `absent` rule."""
        field = str(rule.field)
        if rule.bit is not None:
            is_set = BitSet(field, rule.bit)
            return is_set if wanted == rule.bit_set else negate(is_set)
        mapped = (rule.value_map or {}).get("true" if rule.absent else "false")
        # The stored value that means `absent` explicitly; any other stored value means
        # the opposite (Rule.decode_one).
        explicit = Compare(field, Op.EQ, mapped) if mapped is not None else Constant(False)
        as_absent = any_of([negate(backend.Present(field)), explicit])
        return as_absent if wanted == rule.absent else negate(as_absent)

    @staticmethod
    def present_rule(rule: Rule, written: str) -> Condition:
        """`pr` on one rule (RFC 7644 §3.4.2.2: the attribute has a non-empty value): the
        field holds what Rule.decode shows as a value, so that `not (x pr)` finds the
        records shown without one.

        Not exact where no backend condition can tell: a `format` date whose text does not
        parse reads as no value yet matches (a LIKE pattern knows no digits, a directory
        no strftime), and so do separators alone beyond those Rule.blank_texts lists.
        """
        if rule.absent is not None or rule.field == ENABLED_BY_LOCATION:
            return Constant(True)
        if rule.constant is not None:
            return Constant(rule.constant != "")
        if rule.field is None:
            raise UntranslatableFilter(f"'{written}' is computed and cannot be filtered on")
        present = ConditionTranslator.holds_value(rule, rule.field, written)
        if rule.empty is not None:  # the stand-in for no value is not one (RFC 7644 §3.4.2.2)
            stand_in = Compare(rule.field, Op.EQ, rule.empty, case_exact=True)
            return all_of([present, negate(stand_in)])
        return present

    @staticmethod
    def holds_value(rule: Rule, field: str, written: str) -> Condition:
        """The field holds what Rule.decode shows as a value (the `empty` stand-in aside)."""
        if rule.value_map is not None:
            # A stored value the map does not list reads as none: one of the listed.
            listed = dict.fromkeys(rule.value_map.values())
            return any_of([ConditionTranslator.stores(rule, field, v, written) for v in listed])
        if rule.split is not None:
            # Parts are read trimmed and blank ones dropped: separators alone are no value.
            blank: list[Condition] = [
                Compare(field, Op.EQ, text, case_exact=True) for text in rule.blank_texts()
            ]
            return all_of([backend.Present(field), negate(any_of(blank))])
        return backend.Present(field)

    @staticmethod
    def stores(rule: Rule, field: str, stored: Any, written: str) -> Condition:
        """The field holds `stored` (one of its parts, with `split`), compared as `eq`
        compares a value of the attribute: ignoring case unless it is caseExact."""
        case_exact = rule.target.case_exact
        if rule.split is not None:
            eq = CompareOperator.eq
            return ConditionTranslator.compare_parts(rule, eq, str(stored), written, case_exact)
        return Compare(field, Op.EQ, stored, case_exact)

    # --- multi-valued attributes: value selections and slots ----------------------------

    def value_path(self, node: ValuePath) -> Condition:
        written = str(node.attr_path)
        binding = self.filter.resolve(node.attr_path, strict=False)
        if binding is None:
            raise not_mapped(written)
        if self._bridge_attribute(binding) is not None:
            return self.membership_selection(node.val_filter, written)
        schema, attr, _ = split_urn(binding)
        rules = self.ruleset.for_attribute(schema, attr)
        if not rules:
            raise not_mapped(written)
        return self.entries(rules, node.val_filter, node.attr_path, written)

    def membership_selection(self, node: FilterNode, written: str) -> Condition:
        """`groups[value eq "x"]`: only the value of a membership is known to the backend.

        `or` selects a membership of any of its terms (`members[value eq "4" or value eq
        "5"]`, RFC 7644 §3.4.2.2); `and` and `not` would have to hold of one same member,
        which a test on the group's members one value at a time cannot say.
        """
        if isinstance(node, LogicalExpr) and node.op is LogicalOperator.or_:
            return any_of([self.membership_selection(term, written) for term in node.terms])
        if isinstance(node, Present) and str(node.attr_path).lower() == "value":
            return Membership(None, None)
        if isinstance(node, Comparison) and str(node.attr_path).lower() == "value":
            if node.op not in _EQUALITY:
                raise bad_operator(f"{written}.value", node.op)
            return Membership(Op(node.op.value), str(node.value))
        raise UntranslatableFilter(f"'{written}' can only be filtered on its value with eq or ne")

    def entries(
        self, rules: list[Rule], node: FilterNode, outer: AttrPath, written: str
    ) -> Condition:
        """A filter over the entries of an attribute, evaluated slot by slot and OR-ed.

        Each slot is one possible entry: its type (and primary) are constants of the
        mapping, its other sub-attributes are fields. The entry exists when any of its
        fields holds a value, which a term that may hold on empty fields must require.
        """
        first = _split_with_first(rules)
        if first is not None and _selects_by_type(node):
            return self.first_entry(first, node, outer, written)
        slots: list[Slot | None] = list(RuleSet.slots(rules)) or [None]
        per_slot: list[Condition] = []
        for slot in slots:
            slot_rules = [rule for rule in rules if rule.target.slot == slot]
            condition = self.entry(node, slot, slot_rules, rules, outer)
            if not isinstance(condition, Constant) and implies_present(condition):
                per_slot.append(condition)
                continue
            exists = any_of([self.present_rule(rule, written) for rule in slot_rules])
            per_slot.append(all_of([exists, condition]))
        return any_of(per_slot)

    def entry(
        self,
        node: FilterNode,
        slot: Slot | None,
        slot_rules: list[Rule],
        rules: list[Rule],
        outer: AttrPath,
    ) -> Condition:
        def term(
            node: Comparison | Present, written: str, binding: AttributeBinding, sub: str | None
        ) -> Condition:
            known: Any = None
            if slot is not None and sub == "type":
                known = slot.type
            elif slot is not None and sub == "primary":
                known = True if slot.primary else None
            rule = next((r for r in slot_rules if r.target.sub_attr == sub), None)
            # A slot without the sub-attribute holds no value for it, when it means anything.
            meaningful = slot is not None and (
                sub in ("type", "primary") or any(r.target.sub_attr == sub for r in rules)
            )
            if rule is None and known is None and not meaningful:
                raise not_mapped(written)
            if rule is None:
                return _against_known(node, known, binding.case_exact)
            if isinstance(node, Present):
                return self.present_rule(rule, written)
            return self.compare_rule(rule, node.op, node.value, written, binding.case_exact)

        return self.entry_terms(node, outer, term)

    def entry_terms(
        self,
        node: FilterNode,
        outer: AttrPath,
        term: Callable[[Comparison | Present, str, AttributeBinding, str | None], Condition],
    ) -> Condition:
        """A filter over one entry of `outer` (`emails[...]`), its logic folded here and
        each of its terms, on a sub-attribute, given to `term` with that sub-attribute's
        path as written, its binding and its name."""
        if isinstance(node, LogicalExpr):
            terms = [self.entry_terms(each, outer, term) for each in node.terms]
            return all_of(terms) if node.op is LogicalOperator.and_ else any_of(terms)
        if isinstance(node, Not):
            return negate(self.entry_terms(node.expr, outer, term))
        if (
            not isinstance(node, Comparison | Present)
            or node.attr_path.uri
            or (node.attr_path.sub_attr)
        ):
            raise UntranslatableFilter(f"unsupported filter on '{outer}': '{node}'")
        name = node.attr_path.attr
        written = f"{outer}.{name}"
        binding = self.filter.resolve(AttrPath(outer.attr, name, outer.uri), strict=False)
        if binding is None:
            raise not_mapped(written)
        _, _, sub = split_urn(binding)
        return term(node, written, binding, sub)

    # --- the first value of a `split` text, typed by `first` ---------------------------

    def first_entry(self, rule: Rule, node: FilterNode, outer: AttrPath, written: str) -> Condition:
        """A filter that selects by type or primary the values of a `split` attribute
        with `first` (Rule.first): only its first value has a type, `first`, and is
        primary, so such a filter holds of that value or of none. `emails[type eq
        "work"].value eq "x"` is how Entra matches a user by work address; it was refused
        (400 invalidFilter) while the same user read back that address as its work one.

        A filter that could hold of a value after the first (`emails[not (type eq
        "work")]`) would need to know where the first part ends, which a condition on the
        whole text cannot tell: refused rather than answered wrong.
        """
        others = self.split_entry(node, rule, outer, first=False)
        if others != Constant(False):
            raise UntranslatableFilter(
                f"'{written}' can only select the value of type {rule.first!r} here: the "
                f"other values of '{outer}' are stored without a type"
            )
        condition = self.split_entry(node, rule, outer, first=True)
        if implies_present(condition):
            return condition
        return all_of([self.present_rule(rule, written), condition])

    def split_entry(
        self, node: FilterNode, rule: Rule, outer: AttrPath, *, first: bool
    ) -> Condition:
        """`node` on the first value of a `split` text (`first`), or on any other (its
        value terms then stand for an unknown, `_ANOTHER_VALUE`)."""

        def term(
            node: Comparison | Present, written: str, binding: AttributeBinding, sub: str | None
        ) -> Condition:
            if sub in ("type", "primary"):
                known = (rule.first if sub == "type" else True) if first else None
                return _against_known(node, known, binding.case_exact)
            if sub != rule.target.sub_attr:
                raise not_mapped(written)
            if not first:
                return _ANOTHER_VALUE
            if isinstance(node, Present):
                return self.present_rule(rule, written)
            return self.first_part(rule, node.op, node.value, written, binding.case_exact)

        return self.entry_terms(node, outer, term)

    @staticmethod
    def first_part(
        rule: Rule, op: CompareOperator, value: Any, written: str, case_exact: bool
    ) -> Condition:
        """`eq` or `ne` on the first value of a `split` text: its first part that is not
        blank (Rule.decode reads blank ones away, as in `, x`). `ne` holds of a first
        value that is another (RFC 7644 §3.4.2.2), so it needs one."""
        if op not in _EQUALITY:
            raise bad_operator(written, op)
        equal: Condition
        try:
            encoded = str(rule.encode_one(value))
        except TranslationError as exc:
            if rule.value_map is None:
                raise UntranslatableFilter(str(exc)) from exc
            equal = Constant(False)  # no stored value is the image of an unmapped one
        else:
            sep, field = str(rule.split), str(rule.field)
            if sep in encoded or encoded == "" or encoded != encoded.strip():
                equal = Constant(False)  # no part is this text (compare_parts)
            else:
                alone = [blank + encoded for blank in ("", *rule.blank_texts())]
                equal = any_of(
                    [
                        *(Compare(field, Op.EQ, text, case_exact) for text in alone),
                        *(Compare(field, Op.SW, f"{text}{sep}", case_exact) for text in alone),
                    ]
                )
        if op is CompareOperator.eq:
            return equal
        return all_of([ConditionTranslator.present_rule(rule, written), negate(equal)])


def _against_known(node: Comparison | Present, known: Any, case_exact: bool) -> Condition:
    """A term on a sub-attribute whose value the mapping knows (a slot's type, `first`);
    None: the entry has none, and as in Compare only `ne` holds on an absent value."""
    if isinstance(node, Present):
        return Constant(known is not None)
    if known is None:
        return Constant(node.op is CompareOperator.ne)
    return Constant(compare_values(known, node.op, node.value, case_exact))


_ANOTHER_VALUE: Condition = backend.Present("\0a value after the first")
"""What a value term says of a value after the first of a `split` text: unknown. It is
never sent to a backend: a filter that still holds it is refused (first_entry)."""


def _split_with_first(rules: list[Rule]) -> Rule | None:
    """The attribute's one rule when it is a `split` text whose first value is typed."""
    if len(rules) == 1 and rules[0].split is not None and rules[0].first is not None:
        return rules[0]
    return None


def _selects_by_type(node: FilterNode) -> bool:
    """Whether a filter over an attribute's values names their type or primary."""
    if isinstance(node, LogicalExpr):
        return any(_selects_by_type(term) for term in node.terms)
    if isinstance(node, Not):
        return _selects_by_type(node.expr)
    if isinstance(node, Comparison | Present):
        return node.attr_path.attr.lower() in ("type", "primary") and not node.attr_path.sub_attr
    return False
