"""Conditions (a SCIM filter the mapping translated) compiled to LDAP filters (RFC 4515).

Every assertion value goes through `escape`, so `*)(uid=*` is a value with five odd
characters and never a second filter term. LDAP compares with each attribute's own
matching rules (uid and cn ignore case, as SCIM's userName does).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.base import (
    And,
    BitSet,
    Compare,
    Condition,
    Constant,
    InvalidValue,
    Membership,
    Not,
    ObjectSpec,
    Op,
    Or,
    Present,
)
from connectors.ldap.schema import DirectorySchema
from connectors.ldap.values import KeyCodec, generalized_time, to_directory

EVERYTHING = "(objectClass=*)"
NOTHING = "(!(objectClass=*))"
BIT_AND = "1.2.840.113556.1.4.803"
"""The bitwise-AND matching rule (Active Directory; OpenLDAP supports it too)."""


def escape(value: str | bytes) -> str:
    """An assertion value (RFC 4515 §3): `*`, `(`, `)`, `\\` and NUL as `\\XX`.

    Bytes (a binary key such as objectGUID) are escaped byte by byte.
    """
    if isinstance(value, bytes):
        return "".join(f"\\{byte:02x}" for byte in value)
    out: list[str] = []
    for char in value:
        if char in "*()\\\x00":
            out.append(f"\\{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def any_of(terms: list[str]) -> str:
    return terms[0] if len(terms) == 1 else f"(|{''.join(terms)})"


def all_of(terms: list[str]) -> str:
    return terms[0] if len(terms) == 1 else f"(&{''.join(terms)})"


@dataclass(frozen=True)
class FilterContext:
    """What compiling needs beyond the condition: DNs of referenced records, membership."""

    spec: ObjectSpec
    key: KeyCodec
    dn_of: Callable[[str], str | None]
    """The DN of the record a SCIM id names (a manager, a group), or None."""
    membership: Callable[[Membership], str]
    """The filter term of a membership condition, built by the connector."""
    timestamps: frozenset[str] = frozenset()
    """Fields holding GeneralizedTime (createTimestamp, modifyTimestamp)."""
    schema: DirectorySchema | None = None
    """The directory's schema, to refuse what it cannot evaluate; None: not published."""


def compile_filter(context: FilterContext, condition: Condition) -> str:
    match condition:
        case Compare():
            return _compare(context, condition)
        case Present():
            return f"({condition.field}=*)"
        case And():
            return all_of([compile_filter(context, term) for term in condition.terms])
        case Or():
            return any_of([compile_filter(context, term) for term in condition.terms])
        case Not():
            return f"(!{compile_filter(context, condition.term)})"
        case Constant():
            return EVERYTHING if condition.value else NOTHING
        case Membership():
            return context.membership(condition)
        case BitSet():
            return f"({condition.field}:{BIT_AND}:={condition.mask})"


def _compare(context: FilterContext, condition: Compare) -> str:
    field, op, value = condition.field, condition.op, condition.value
    if value is None:
        present = f"({field}=*)"
        return present if op is Op.NE else f"(!{present})"
    if field == context.spec.key:
        return _equality(op, _key_term(context, field, str(value)))
    described = context.spec.field_named(field)
    if described is not None and described.reference is not None:
        dn = context.dn_of(str(value))
        term = f"({field}={escape(dn)})" if dn is not None else NOTHING
        return _equality(op, term, field)
    _check_evaluable(context, field, op)
    text: str | bytes
    if field in context.timestamps:
        moment = _timestamp(value, field)
        if moment is None:
            return _after_every_time(field, op)
        text = moment
    else:
        text = to_directory(value)
    if text == "":
        return _against_empty(field, op)
    if isinstance(value, str) and not value.strip(" "):
        # The directory's string rules drop the spaces around a value (RFC 4518 §2.6.1):
        # of spaces alone nothing is left to compare, and slapd answers each operator its
        # own way (`ew " "` matched every user, `sw " "` none).
        raise InvalidValue(
            "the directory ignores the spaces around a value: spaces alone cannot be compared",
            field=field,
        )
    escaped = escape(text)
    if op in (Op.EQ, Op.NE):
        term = f"({field}={escaped})"
        exact = _case_exact_rule(context, condition)
        if exact is not None:
            # The plain term keeps the attribute's index in use; the extensible match
            # (RFC 4515 §3) then drops the values that differ only in case.
            term = f"(&{term}({field}:{exact}:={escaped}))"
        return term if op is Op.EQ else f"(!{term})"
    if op is Op.CO:
        return f"({field}=*{escaped}*)"
    if op is Op.SW:
        return f"({field}={escaped}*)"
    if op is Op.EW:
        return f"({field}=*{escaped})"
    if op is Op.GE:
        return f"({field}>={escaped})"
    if op is Op.LE:
        return f"({field}<={escaped})"
    # LDAP has only >= and <= (RFC 4511 §4.5.1.7): gt is ge without eq.
    if op is Op.GT:
        return f"(&({field}>={escaped})(!({field}={escaped})))"
    return f"(&({field}<={escaped})(!({field}={escaped})))"


def _case_exact_rule(context: FilterContext, condition: Compare) -> str | None:
    """The rule to compare a caseExact SCIM attribute with (externalId, RFC 7643 §3.1) when
    the attribute holding it ignores case; None when the directory's own rule will do.

    Only equality has such a rule in filters: a substring or ordering comparison of a
    caseExact attribute keeps the directory's rule (README, "Connecting a directory")."""
    if not condition.case_exact or context.schema is None:
        return None
    return context.schema.case_exact_rule(condition.field)


def _against_empty(field: str, op: Op) -> str:
    """A comparison with "", which no directory string holds (RFC 4517 §3.3.6: one
    character at least). The server cannot evaluate `(title=)` (Undefined, and so is its
    negation: `ne ""` would match nothing), and `(title=**)` cannot even be encoded. What
    SCIM means instead: nothing equals "" nor sorts before it; every value contains it,
    starts and ends with it, and sorts after it; `ne` holds for every resource, with a
    value or without (the two-valued rule of connectors.base)."""
    if op in (Op.EQ, Op.LT, Op.LE):
        return NOTHING
    if op is Op.NE:
        return EVERYTHING
    return f"({field}=*)"


_ORDERING = frozenset({Op.GT, Op.GE, Op.LT, Op.LE})
_SUBSTRINGS = frozenset({Op.CO, Op.SW, Op.EW})


def _check_evaluable(context: FilterContext, field: str, op: Op) -> None:
    """Refuse a comparison the directory would evaluate to Undefined (no matching rule).

    Undefined is not true, so `(uid>=b)` would match nothing rather than fail: a silently
    empty result is worse than a clear 400 invalidFilter.
    """
    schema = context.schema
    if schema is None:
        return
    if op in _ORDERING and not schema.can_order(field):
        raise InvalidValue(
            f"the directory cannot compare values by order ({op.value})", field=field
        )
    if op in _SUBSTRINGS and not schema.can_match_substrings(field):
        raise InvalidValue(f"the directory cannot match parts of values ({op.value})", field=field)


def _equality(op: Op, term: str, field: str | None = None) -> str:
    if op is Op.EQ:
        return term
    if op is Op.NE:
        return f"(!{term})"
    raise InvalidValue("only eq and ne apply to ids", field=field)


def _key_term(context: FilterContext, field: str, id: str) -> str:
    """An id that cannot be a key (not a UUID) matches nothing rather than failing."""
    value = context.key.filter_value(id)
    return f"({field}={escape(value)})" if value is not None else NOTHING


_ISO_FRACTION = re.compile(r"[T ]\d{2}:?\d{2}:?\d{2}[.,](\d+)")


def _timestamp(value: Any, field: str) -> str | None:
    """A SCIM dateTime (RFC 7643 §2.3.5, any offset) as GeneralizedTime in UTC, to its
    last digit: slapd's generalizedTimeOrderingMatch compares fractions, so cutting
    `01:17:33.5Z` to `011733Z` made `lt` miss and `ge`/`eq` catch the entries of 01:17:33.
    A fraction longer than a datetime's microseconds is kept as written. None: a moment
    after the last GeneralizedTime (year 9999 with a negative offset)."""
    digits: str | None = None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise InvalidValue("is not an ISO 8601 date", field=field) from None
        written = _ISO_FRACTION.search(str(value))
        digits = written.group(1) if written else None
    try:
        return generalized_time(moment, digits)
    except OverflowError:
        return None


def _after_every_time(field: str, op: Op) -> str:
    """A comparison with a moment no GeneralizedTime reaches: every value is before it."""
    if op in (Op.LT, Op.LE):
        return f"({field}=*)"
    if op is Op.NE:
        return EVERYTHING
    return NOTHING
