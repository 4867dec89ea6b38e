"""Conditions (a SCIM filter the mapping translated) compiled to SQLAlchemy expressions.

Every value travels as a bound parameter. Each compiled term is two-valued, never SQL
NULL, so that `Not` means what the filter says: a record without a value does not match
`eq`, and does match `not (title eq "x")` and `title ne "x"` (see connectors.base.Compare).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connectors.base import (
    And,
    BitSet,
    Compare,
    Condition,
    Constant,
    InvalidValue,
    Kind,
    Membership,
    Not,
    Op,
    Or,
    Present,
)
from connectors.sql.caseless import folding
from connectors.sql.tables import Mapped, Tables
from connectors.sql.values import beyond_range, finer_than_microseconds, key_from_id, to_column

Expression = sa.ColumnElement[bool]

LIKE_ESCAPE = "/"
"""Not the backslash: MySQL also treats that one as a string escape."""

_ORDERING: dict[Op, Callable[[Any, Any], Expression]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.LT: operator.lt,
    Op.LE: operator.le,
}
_SUBSTRING = (Op.CO, Op.SW, Op.EW)


@dataclass(frozen=True, slots=True)
class Target:
    """What a condition is compiled against: the table searched, and its neighbours."""

    tables: Tables
    kind: Kind

    @property
    def mapped(self) -> Mapped:
        return self.tables.of(self.kind)


def compile_condition(target: Target, condition: Condition) -> Expression:
    match condition:
        case Compare():
            return compare(target, condition)
        case Present():
            return present(target, condition)
        case And():
            return conjunction(target, condition)
        case Or():
            return disjunction(target, condition)
        case Not():
            return negation(target, condition)
        case Constant():
            return constant(condition)
        case Membership():
            return membership(target, condition)
        case BitSet():
            return bits_set(target, condition)


def bits_set(target: Target, condition: BitSet) -> Expression:
    """Every bit of the mask set in an integer column; an empty column has none set."""
    column = target.mapped.column(condition.field)
    masked = column.op("&")(sa.literal(condition.mask, sa.Integer()))
    return sa.and_(column.is_not(None), masked == condition.mask)


def compare(target: Target, condition: Compare) -> Expression:
    mapped = target.mapped
    column = mapped.column(condition.field)
    if condition.value is None:
        return column.is_not(None) if condition.op is Op.NE else column.is_(None)
    referenced = _referenced(target, condition.field)
    if referenced is not None:
        return _compare_id(condition, column, referenced)
    if mapped.is_text(condition.field):
        return _compare_text(target, condition, column)
    if condition.op in _SUBSTRING:
        raise InvalidValue(f"{condition.op.value} applies to text only", field=condition.field)
    beyond = beyond_range(column, condition.value)
    if beyond:
        return _beyond_range(condition.op, column, above=beyond > 0)
    value = to_column(column, condition.value, field=condition.field, stored=False)
    if isinstance(column.type, sa.DateTime) and finer_than_microseconds(condition.value):
        return _between_microseconds(condition.op, column, value)
    return _two_valued(condition.op, column, _ORDERING[condition.op](column, value))


def _between_microseconds(op: Op, column: sa.Column[Any], below: Any) -> Expression:
    """`column op instant` for an instant after `below`, the microsecond it was cut to,
    and before the next one: no value a column holds (microseconds at the finest) equals
    it. RFC 7644 §3.4.2.2 compares the instants: lt and le hold for what is at `below` or
    before, gt and ge for what is after it; eq for nothing, ne for every record (as an
    absent value matches ne, see `_two_valued`)."""
    if op is Op.EQ:
        return sa.false()
    if op is Op.NE:
        return sa.true()
    matched = column <= below if op in (Op.LT, Op.LE) else column > below
    return _two_valued(op, column, matched)


def _beyond_range(op: Op, column: sa.Column[Any], *, above: bool) -> Expression:
    """`column op value` for a whole number or an instant the column cannot hold (RFC
    7644 §3.4.2.2: the filter is valid, its value only names no stored one).

    Above the column's range, eq, gt and ge match nothing, lt and le every record with a
    value; below it, the mirror. ne matches every record, as it matches an absent value
    (see `_two_valued`), like an id that cannot be a key (`_compare_id`).
    """
    if op is Op.NE:
        return sa.true()
    holds = (Op.LT, Op.LE) if above else (Op.GT, Op.GE)
    return column.is_not(None) if op in holds else sa.false()


def _referenced(target: Target, field: str) -> Mapped | None:
    """The table whose key `field` holds, when it holds one: the key itself or a reference."""
    mapped = target.mapped
    if field == mapped.spec.key:
        return mapped
    described = mapped.spec.field_named(field)
    if described is None or described.reference is None:
        return None
    return target.tables.of(described.reference)


def _compare_id(condition: Compare, column: sa.Column[Any], referenced: Mapped) -> Expression:
    """SCIM ids compare as ids: eq and ne only, an id that cannot be a key matches nothing."""
    if condition.op not in (Op.EQ, Op.NE):
        raise InvalidValue("only eq and ne apply to ids", field=condition.field)
    key = key_from_id(referenced.spec.kind, referenced.key, str(condition.value))
    if key is None:
        return sa.true() if condition.op is Op.NE else sa.false()
    return _two_valued(condition.op, column, _ORDERING[condition.op](column, key))


def _compare_text(target: Target, condition: Compare, column: sa.Column[Any]) -> Expression:
    if not isinstance(condition.value, str | int | float) or isinstance(condition.value, bool):
        raise InvalidValue("the value is not text", field=condition.field)
    value = str(condition.value)
    dialect = target.tables.dialect
    if condition.op in _SUBSTRING:
        if condition.case_exact and dialect == "sqlite":
            # SQLite's LIKE ignores ASCII case whatever the operands; GLOB does not.
            matched = column.op("GLOB", is_comparison=True)(_glob(condition.op, value))
            return _two_valued(condition.op, column, matched)
        pattern = _like(condition.op, value)
        left, right = _text_operands(target, condition.case_exact, column, pattern)
        return _two_valued(condition.op, column, left.like(right, escape=LIKE_ESCAPE))
    left, right = _text_operands(target, condition.case_exact, column, value)
    return _two_valued(condition.op, column, _ORDERING[condition.op](left, right))


LOOKUP_VALUE = "lookup_value"
"""The parameter of `lookup_condition`'s statement that holds the value looked up."""


def lookup_shape(target: Target, condition: Condition | None) -> tuple[str, bool, str] | None:
    """(field, case_exact, value) when `condition` is `field eq "text"` on a text column
    of the table itself: the lookup an identity provider makes before each create.

    Two such lookups differ only in their value, so their statement is built once and
    run with the value as a parameter (see `lookup_condition`); anything else is None.
    """
    if not isinstance(condition, Compare) or condition.op is not Op.EQ:
        return None
    if not isinstance(condition.value, str):
        return None
    mapped = target.mapped
    try:
        mapped.column(condition.field)
    except ValueError:
        return None  # compile_condition reports it
    if _referenced(target, condition.field) is not None or not mapped.is_text(condition.field):
        return None
    return condition.field, condition.case_exact, condition.value


def lookup_condition(target: Target, field: str, case_exact: bool) -> Expression:
    """What compile_condition makes of `field eq "..."` (see `lookup_shape`), with the
    value left to the LOOKUP_VALUE parameter."""
    column = target.mapped.column(field)
    value = sa.bindparam(LOOKUP_VALUE, type_=sa.String())
    left, right = _text_operands(target, case_exact, column, value)
    return _two_valued(Op.EQ, column, left == right)


def _text_operands(
    target: Target,
    case_exact: bool,
    column: sa.Column[Any],
    value: str | sa.BindParameter[str],
) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    bound = value if isinstance(value, sa.BindParameter) else sa.literal(value, sa.String())
    if not case_exact:
        fold = folding(column)
        return fold(column), fold(bound)
    if target.tables.is_mysql:
        return as_bytes(column), as_bytes(bound)
    return column, bound


def as_bytes(text: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """MariaDB's default collations ignore case: compare the bytes instead.

    Typed as text still, so that LIKE applies (the database compares binary strings).
    """
    return sa.type_coerce(sa.cast(text, sa.LargeBinary), sa.String())


def _like(op: Op, value: str) -> str:
    escaped = "".join(
        LIKE_ESCAPE + char if char in ("%", "_", LIKE_ESCAPE) else char for char in value
    )
    if op is Op.SW:
        return escaped + "%"
    if op is Op.EW:
        return "%" + escaped
    return "%" + escaped + "%"


def _glob(op: Op, value: str) -> str:
    escaped = "".join(f"[{char}]" if char in "*?[" else char for char in value)
    if op is Op.SW:
        return escaped + "*"
    if op is Op.EW:
        return "*" + escaped
    return "*" + escaped + "*"


def _two_valued(op: Op, column: sa.Column[Any], matched: Expression) -> Expression:
    """An absent value matches `ne` only (RFC 7644 §3.4.2.2 as read in connectors.base)."""
    if op is Op.NE:
        return sa.or_(column.is_(None), matched)
    return sa.and_(column.is_not(None), matched)


def present(target: Target, condition: Present) -> Expression:
    """RFC 7644 §3.4.2.2 `pr`: a value that is neither null nor empty."""
    column = target.mapped.column(condition.field)
    if target.mapped.is_text(condition.field):
        return sa.and_(column.is_not(None), column != "")
    return column.is_not(None)


def conjunction(target: Target, condition: And) -> Expression:
    if not condition.terms:
        return sa.true()
    return sa.and_(*(compile_condition(target, term) for term in condition.terms))


def disjunction(target: Target, condition: Or) -> Expression:
    if not condition.terms:
        return sa.false()
    return sa.or_(*(compile_condition(target, term) for term in condition.terms))


def negation(target: Target, condition: Not) -> Expression:
    return sa.not_(compile_condition(target, condition.term))


def constant(condition: Constant) -> Expression:
    return sa.true() if condition.value else sa.false()


def membership(target: Target, condition: Membership) -> Expression:
    """An EXISTS over the membership table, correlated with the searched record's key."""
    members = target.tables.members
    if members is None:
        raise InvalidValue("this service stores no memberships")
    if target.kind is Kind.USERS:
        own, other, other_kind = members.member, members.group, Kind.GROUPS
    else:
        own, other, other_kind = members.group, members.member, Kind.USERS
    exists = sa.select(sa.literal(1)).select_from(members.table).where(own == target.mapped.key)
    if condition.value is not None:
        key = key_from_id(other_kind, target.tables.of(other_kind).key, condition.value)
        if key is None:
            return sa.true() if condition.op is Op.NE else sa.false()
        exists = exists.where(other == key)
    found = exists.exists()
    return sa.not_(found) if condition.op is Op.NE else found
