"""One mapping rule, its transforms, and the rules of a resource type indexed for lookup.

Transforms apply to_backend in the order map, case, format, split, and in reverse
to_scim (`case` only folds on the way in: the original case is lost).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import product
from typing import Any, Final

from connectors.base import ENABLED_BY_LOCATION, Kind

from .errors import TranslationError
from .paths import Slot, Target, ValueKind
from .templates import Template


class _Omit:
    """A backend value with no SCIM rendering: the attribute is left out of the resource."""


OMIT: Final = _Omit()


def map_key(value: Any) -> str:
    """A SCIM value as the (string) key of a `map` table: TOML keys are strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def iso(value: datetime | date) -> str:
    """ISO 8601 as RFC 7643 §2.3.5 wants it; a naive backend value is taken as UTC."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


_TIME_DIRECTIVE = re.compile(r"%[HIMSfpXcTRrz]")
"""strftime directives of a time of day or zone: a format without them holds a date only."""


@dataclass(frozen=True, slots=True)
class Rule:
    """How one SCIM attribute (or sub-attribute, or slot sub-attribute) maps to the backend."""

    key: str
    """The TOML key path, for load-time messages (`users.attributes.active`)."""
    scim_path: str
    """The SCIM path as the mapping wrote it, for client messages."""
    target: Target
    spelling: str = ""
    """The key path as the file spells it (`users.attributes."name.givenName"`), to tell
    apart two spellings that `key` writes alike; empty: `key`."""
    field: str | None = None
    default: Any = None
    """A literal SCIM value or a Template used when the client sends none; None: no default."""
    value_map: Mapping[str, Any] | None = None
    case: str | None = None
    date_format: str | None = None
    split: str | None = None
    first: str | None = None
    """With `split`: the type (RFC 7643 §2.4) the first value stands for, read as that
    type and primary; an entry sent with that type (else the primary one) is stored
    first. A list of joined values keeps no types, and an identity provider addresses its
    one work address as `emails[type eq "work"].value` (Entra's replace): without it, no
    entry ever matched, and each change added the address beside the old ones."""
    reference: Kind | None = None
    unique: bool = False
    display: bool = False
    template: Template | None = None
    constant: Any = None
    absent: Any = None
    """The SCIM value of a record whose field holds nothing (`active` with ppolicy's
    pwdAccountLockedTime: no lock time means active). Writing it clears the field unless
    `map` gives it a value; a stored value `map` does not know reads as its opposite."""
    bit: int | None = None
    """The field is an integer of flags and this attribute is the bits of this mask
    (Active Directory's userAccountControl 0x2, ACCOUNTDISABLE); other bits are kept."""
    bit_set: bool = True
    """The boolean the bits mean when set (false for ACCOUNTDISABLE)."""
    base: int = 0
    """The flags a new record starts from (userAccountControl 512, NORMAL_ACCOUNT)."""
    empty: str | None = None
    """Stored when the attribute has no value, for a field the backend requires (sn of an
    inetOrgPerson); read back as no value."""
    canonical: tuple[str, ...] | None = None
    """The values a declared extension attribute allows (its `canonical` list). The
    README promises admins a closed list, and RFC 7643 §2.3.1 lets a service provider
    restrict a string to its canonical values, so a write of another value is refused."""

    @property
    def always_present(self) -> bool:
        """The SCIM value is defined for every record, whatever the field holds."""
        return self.bit is not None or self.absent is not None or self.field == ENABLED_BY_LOCATION

    @property
    def read_only(self) -> bool:
        """Computed by the mapping: clients cannot write it (RFC 7643 §7 mutability)."""
        return self.template is not None or self.constant is not None

    @property
    def several(self) -> bool:
        """Whether the SCIM side holds several values that the field stores together."""
        return self.target.multi_valued and self.target.slot is None

    def translation_error(self, value: Any, why: str) -> TranslationError:
        shown = "the value" if self.target.secret else f"value {value!r}"
        return TranslationError(f"{shown} of '{self.scim_path}' {why}", attribute=self.scim_path)

    def longest_date(self) -> str | None:
        """The longest text `date_format` writes (every day of a leap year, so the
        longest month and day names; %z as long as any offset's, %Z as `UTC`, what a
        client's `Z` gives), for the start-up check against the column it goes to; None
        without a format."""
        if self.date_format is None:
            return None
        start = datetime(2088, 1, 1, 23, 59, 59, 999999, tzinfo=UTC)
        days = (start + timedelta(days=n) for n in range(366))
        return max((day.strftime(self.date_format) for day in days), key=len)

    def encode_flags(self, value: Any, current: Any) -> int:
        """The flags integer with this rule's bits set or cleared, other bits as stored."""
        if self.bit is None:
            raise ValueError("not a flags rule")
        try:
            flags = self.base if current is None or current == "" else int(current)
        except (TypeError, ValueError):
            raise self.translation_error(current, "is not an integer of flags") from None
        wanted = value if isinstance(value, bool) else map_key(value).lower() == "true"
        if wanted == self.bit_set:
            return flags | self.bit
        return flags & ~self.bit

    def decode_flags(self, value: Any) -> Any:
        if self.bit is None:
            raise ValueError("not a flags rule")
        try:
            flags = int(value)
        except (TypeError, ValueError):
            return OMIT
        return self.bit_set if flags & self.bit == self.bit else not self.bit_set

    def encode_one(self, value: Any) -> Any:
        """One SCIM value to its backend form (map, case, format)."""
        unmapped = self.value_map is not None and map_key(value) not in self.value_map
        if self.absent is not None and unmapped and value == self.absent:
            return None
        if self.value_map is not None:
            key = map_key(value)
            if key not in self.value_map:
                folded = {each.lower(): each for each in self.value_map}
                if key.lower() not in folded or self.target.case_exact:
                    raise self.translation_error(value, "is not one the backend can store")
                key = folded[key.lower()]
            value = self.value_map[key]
        if self.case is not None and isinstance(value, str):
            value = value.lower() if self.case == "lower" else value.upper()
        if self.date_format is not None:
            moment = value
            if isinstance(value, str):
                try:
                    moment = datetime.fromisoformat(value)
                except ValueError:
                    raise self.translation_error(value, "is not an ISO 8601 date") from None
            if not isinstance(moment, date):
                raise self.translation_error(value, "is not an ISO 8601 date")
            return moment.strftime(self.date_format)
        if isinstance(value, datetime | date):
            return iso(value)
        return value

    def allowed(self, value: Any, kept: Any = None) -> Any:
        """A value written as one of the canonical values, in their spelling (compared
        case-insensitively unless the attribute is caseExact, as scim2-models does).

        Checked on writes only, not in `encode_one`: a filter operand (`grade sw "a"`) is
        no value of the attribute and must still translate. A value the record already
        holds (`kept`, as stored) passes: a record written before the list was declared,
        or by another system, must stay writable in its other attributes.
        """
        if self.canonical is None or value is None or value == "":
            return value
        if kept is not None and self._holds(kept, value):
            return value
        if value in self.canonical:
            return value
        if isinstance(value, str) and not self.target.case_exact:
            folded = {each.lower(): each for each in self.canonical}
            if value.lower() in folded:
                return folded[value.lower()]
        allowed = ", ".join(repr(each) for each in self.canonical)
        raise self.translation_error(value, f"is not one of the allowed values ({allowed})")

    def _holds(self, kept: Any, value: Any) -> bool:
        """Whether the stored value `kept` already holds `value` (one of its values)."""
        try:
            encoded = self.encode_one(value)
        except TranslationError:
            return False
        if isinstance(kept, list | tuple):
            return encoded in kept
        if self.split is not None and isinstance(kept, str):
            return str(encoded) in [part.strip() for part in kept.split(self.split)]
        return bool(encoded == kept)

    def encode(self, value: Any, kept: Any = None) -> Any:
        """A SCIM value (a list when `several`) to the field's value; `kept` is what the
        record holds now (its canonical values are not checked again)."""
        if not self.several:
            return self.encode_one(self.allowed(value, kept))
        items = value if isinstance(value, list) else [value]
        encoded = [
            self.encode_one(self.allowed(item, kept))
            for item in items
            if item is not None and item != ""
        ]
        if not encoded:
            return None
        if self.split is not None:
            # Each part as `decode` reads it back, trimmed and none empty: a filter compares
            # parts so (conditions.compare_parts), and `" a@corp.test"` stored as sent was
            # shown as `a@corp.test`, which `eq "a@corp.test"` then did not find.
            texts = _distinct(
                [text for text in (str(item).strip() for item in encoded) if text],
                self.target.case_exact,
            )
            for text in texts:
                if self.split in text:
                    # Joined, it would read back as two values: `a,b@corp.test` as the
                    # addresses `a` and `b@corp.test`, which a filter then finds.
                    raise self.translation_error(
                        text, f"holds {self.split!r}, which separates the values stored here"
                    )
            return self.split.join(texts) or None
        return encoded

    def decode_one(self, value: Any) -> Any:
        """One backend value to SCIM (reverse format, reverse map), or OMIT."""
        if self.date_format is not None and isinstance(value, str):
            try:
                # Naive on purpose: a date held as text carries no zone; iso() reads it as UTC.
                value = datetime.strptime(value.strip(), self.date_format)
            except ValueError:
                return OMIT
            if self.target.kind is ValueKind.STRING and not _TIME_DIRECTIVE.search(
                self.date_format
            ):
                # A string attribute holding a date (`"2026-03-01"`) reads back as the
                # date the client sent, not as a timestamp at midnight UTC.
                return value.date().isoformat()
        if self.bit is not None:
            return self.decode_flags(value)
        if self.value_map is not None:
            scim = next((k for k, v in self.value_map.items() if v == value), None)
            if scim is None:
                scim = next((k for k, v in self.value_map.items() if str(v) == str(value)), None)
            if scim is None and self.absent is not None:
                # Directories compare these case-insensitively (nsAccountLock: true, TRUE).
                text = str(value).lower()
                scim = next((k for k, v in self.value_map.items() if str(v).lower() == text), None)
                if scim is None and isinstance(self.absent, bool):
                    return not self.absent
            if scim is None:
                return OMIT
            return scim == "true" if self.target.kind is ValueKind.BOOLEAN else scim
        day = isinstance(value, date) and not isinstance(value, datetime)
        if day and self.target.kind is ValueKind.STRING:
            # A string attribute kept in a DATE column reads back as the date the client
            # sent (`2026-03-01`), not as a timestamp it never wrote: an identity provider
            # comparing would see a change on every sync.
            return value.isoformat()
        if isinstance(value, datetime | date):
            return iso(value)
        if self.target.kind is ValueKind.BOOLEAN and isinstance(value, int):
            return bool(value)
        if self.target.kind is ValueKind.STRING and isinstance(value, int | float):
            return str(value)
        return value

    def decode(self, value: Any) -> Any:
        """The field's value to SCIM (a list when `several`), or OMIT."""
        if not self.several:
            return self.decode_one(value)
        if self.split is not None:
            items: list[Any] = [part.strip() for part in str(value).split(self.split)]
        else:
            items = list(value) if isinstance(value, list | tuple) else [value]
        decoded = [self.decode_one(item) for item in items if item is not None and item != ""]
        kept = [item for item in decoded if item is not OMIT]
        return kept or OMIT

    def blank_texts(self) -> tuple[str, ...]:
        """Texts of a `split` field that `decode` reads as no value, for `pr` to tell
        apart: separators alone, between two or three parts each empty or one space
        (`,`, `, ,`), as a system joining a list of empty values writes them.

        Separators between more parts, or around other white space, read as no value
        too, but a backend condition cannot say "nothing but these characters" (no
        character classes in `co`, `sw`, `ew`): such texts still match `pr`. Spaces alone
        are left out: a directory cannot compare them (connectors.ldap.filters).
        """
        if self.split is None:
            raise ValueError("not a split rule")
        joined = (
            self.split.join(parts) for size in (2, 3) for parts in product(("", " "), repeat=size)
        )
        return tuple(dict.fromkeys(text for text in joined if text.strip()))


def _attribute_key(target: Target) -> tuple[str, str]:
    return target.schema.lower(), target.attr.lower()


class RuleSet:
    """The rules of one resource type, in mapping order, indexed by SCIM attribute."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self._by_attribute: dict[tuple[str, str], list[Rule]] = {}
        for rule in rules:
            self._by_attribute.setdefault(_attribute_key(rule.target), []).append(rule)

    def for_attribute(self, schema: str, attr: str) -> list[Rule]:
        """The rules of a top-level attribute (all its sub-attributes and slots)."""
        return self._by_attribute.get((schema.lower(), attr.lower()), [])

    def attributes(self) -> list[list[Rule]]:
        """Rules grouped by top-level attribute, in mapping order."""
        return list(self._by_attribute.values())

    @staticmethod
    def slots(rules: list[Rule]) -> list[Slot]:
        """The distinct slots of one attribute's rules, in mapping order."""
        found: list[Slot] = []
        for rule in rules:
            if rule.target.slot is not None and rule.target.slot not in found:
                found.append(rule.target.slot)
        return found

    @property
    def stored_fields(self) -> list[str]:
        """Every field to_backend writes, in mapping order."""
        fields: list[str] = []
        for rule in self.rules:
            if rule.field is not None and rule.field not in fields:
                fields.append(rule.field)
        return fields


def _distinct(texts: list[str], case_exact: bool) -> list[str]:
    """Each text once, the first spelling kept: the values of one attribute are a set
    (RFC 7643 §2.4), compared without case unless the attribute is caseExact."""
    seen: set[str] = set()
    kept: list[str] = []
    for text in texts:
        key = text if case_exact else text.casefold()
        if key not in seen:
            seen.add(key)
            kept.append(text)
    return kept
