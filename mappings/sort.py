"""`sortBy` (RFC 7644 §3.4.2.3) to the backend field the connector orders by."""

from __future__ import annotations

import re
from typing import Any

from scim2_models import Path, Resource
from scim2_models.exceptions import InvalidPathException
from scim2_models.path import AttrPath

from connectors.base import ObjectSpec, Sort

from .errors import TranslationError
from .paths import ValueKind, is_complex, split_urn
from .rules import Rule, RuleSet


def sort_by(
    model: type[Resource[Any]],
    spec: ObjectSpec,
    ruleset: RuleSet,
    attribute_path: str,
    descending: bool,
) -> Sort:
    """The field of a single-valued mapped attribute, or of a slot's value.

    A multi-valued attribute sorts by its primary value (RFC 7644 §3.4.2.3), so a slot
    pinned primary is preferred, then the first slot of the mapping.
    """
    unsortable = TranslationError(
        f"'{attribute_path}' cannot be used to sort", attribute=attribute_path
    )
    try:
        path = Path[model](attribute_path)  # type: ignore[valid-type]
        node = path.ast
    except InvalidPathException:
        raise unsortable from None
    binding = path.resolve() if isinstance(node, AttrPath) else None
    if binding is None:
        raise unsortable
    schema, attr, sub = split_urn(binding)
    if binding.model is model and binding.field_name in {"id", "meta"}:
        fields = {"id": spec.key, "meta.created": spec.created, "meta.lastModified": spec.modified}
        field = fields.get(attr if sub is None else f"{attr}.{sub}")
        if field is None:
            raise unsortable
        return Sort(field, descending, case_exact=binding.field_name == "id")
    if is_complex(binding):
        sub = "value"
        binding = Path[model](f"{attribute_path}.value").resolve()  # type: ignore[valid-type]
        if binding is None:
            raise unsortable
    candidates = [
        (rule.field, rule)
        for rule in ruleset.for_attribute(schema, attr)
        if rule.target.sub_attr == sub and rule.field is not None and rule.constant is None
    ]
    candidates.sort(key=lambda each: not (each[1].target.slot and each[1].target.slot.primary))
    if not candidates or candidates[0][1].several:
        raise unsortable
    field, rule = candidates[0]
    if rule.date_format is not None and not _sorts_by_date(rule.date_format):
        # The backend orders the text ("02.01.2022" before "15.03.2021"), not the date
        # it holds: refused, as `gt` and `lt` on it are (conditions.compare_rule).
        raise TranslationError(
            f"'{attribute_path}' is held as text in the format {rule.date_format!r}, which "
            "does not sort by date",
            attribute=attribute_path,
        )
    ranks, absent_rank, unlisted_rank = _ranks(rule, binding.case_exact)
    return Sort(
        field,
        descending,
        case_exact=binding.case_exact,
        empty=rule.empty,
        ranks=ranks,
        absent_rank=absent_rank,
        unlisted_rank=unlisted_rank,
    )


_BIG_ENDIAN = ("%Y", "%m", "%d", "%H", "%M", "%S", "%f")
"""Fixed-width strftime directives, largest unit first: text made of a prefix of them, in
this order, sorts as the moments it holds (ISO 8601 is made so)."""


def _sorts_by_date(date_format: str) -> bool:
    """Whether dates written in `date_format` sort as text the way they do as dates."""
    directives = re.findall(r"%.", date_format)
    return tuple(directives) == _BIG_ENDIAN[: len(directives)]


def _ranks(
    rule: Rule, case_exact: bool
) -> tuple[tuple[tuple[Any, int], ...], int | None, int | None]:
    """Each stored value of the rule's `map` with the rank of the SCIM value it reads as.

    RFC 7644 §3.4.2.3 sorts by the attribute's value, not by what the backend stores
    for it: booleans false before true (sql-default stores "T" and "A", which sort the
    other way), numbers by magnitude, strings without case unless caseExact, as the
    connectors sort unmapped text. Values that compare equal share a rank. A stored value
    two SCIM values map to reads as the first (Rule.decode_one), and ranks as it.

    With `absent` (a lock attribute: no value means active), no stored value ranks as
    the absent value, and a stored value the map does not list as its opposite, as
    Rule.decode_one reads them (the ldap-389ds preset stores "FALSE" for active, "TRUE"
    for locked, and mostly nothing). Returns the ranks, the absent rank and the rank of
    a value not listed (None: such a record sorts as one without a value).
    """
    if rule.value_map is None:
        return (), None, None
    kind = rule.target.kind

    def order(scim: str) -> tuple[Any, ...]:
        if kind is ValueKind.BOOLEAN:
            return (scim == "true",)
        if kind is ValueKind.NUMBER:
            try:
                return (0, float(scim), "")
            except ValueError:
                return (1, 0.0, scim)
        return (scim if case_exact else scim.lower(),)

    read_as: dict[Any, str] = {}
    for scim, stored in rule.value_map.items():
        if stored is not None:
            read_as.setdefault(stored, scim)
    orders = {order(scim) for scim in read_as.values()}
    absent = unlisted = None
    if rule.absent is not None:
        absent = _scim_text(rule.absent)
        orders.add(order(absent))
        if isinstance(rule.absent, bool):
            unlisted = _scim_text(not rule.absent)
            orders.add(order(unlisted))
    distinct = sorted(orders)

    def rank(scim: str) -> int:
        return distinct.index(order(scim))

    ranks = tuple((stored, rank(scim)) for stored, scim in read_as.items())
    return (
        ranks,
        None if absent is None else rank(absent),
        None if unlisted is None else rank(unlisted),
    )


def _scim_text(value: Any) -> str:
    """A SCIM value as the keys of a `map` spell it (`true`, not `True`)."""
    return str(value).lower() if isinstance(value, bool) else str(value)
