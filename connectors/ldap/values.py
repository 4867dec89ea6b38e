"""Directory values to connector values and back: keys, times, booleans, DNs.

ldap3 runs without reading the server's schema (faster to connect, and the same on
every directory), so values arrive as text, or bytes for a binary attribute, and each
conversion here is explicit.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

_GENERALIZED = re.compile(
    r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d+))?(Z|[+-]\d{2}(?:\d{2})?)?"
)
_NS_UNIQUE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}")


@dataclass(frozen=True)
class KeyCodec:
    """The SCIM id of an entry from its stable key attribute, and the reverse for filters.

    entryUUID (OpenLDAP, RFC 4530) is a UUID in text; objectGUID (Active Directory) is
    16 bytes in Microsoft's mixed-endian order, shown as the usual GUID text;
    nsUniqueId (389 DS) is its own four-group hex text. Ids are lower case.
    """

    attribute: str

    @property
    def binary(self) -> bool:
        return self.attribute.lower() == "objectguid"

    def id_of(self, raw: Any) -> str:
        if isinstance(raw, list):
            raw = raw[0] if raw else ""
        if self.binary and isinstance(raw, str):
            raw = raw.encode("utf-8")  # 16 bytes that happened to be valid UTF-8
        if self.binary and isinstance(raw, bytes | bytearray) and len(raw) == 16:
            return str(uuid.UUID(bytes_le=bytes(raw)))
        if isinstance(raw, bytes | bytearray):
            raw = bytes(raw).decode("utf-8", "replace")
        return str(raw).strip().lower()

    def filter_value(self, id: str) -> str | bytes | None:
        """The assertion value naming `id`, or None when `id` cannot be a key at all."""
        text = id.strip().lower()
        if self.attribute.lower() == "nsuniqueid":
            return text if _NS_UNIQUE_ID.fullmatch(text) else None
        try:
            parsed = uuid.UUID(text)
        except ValueError:
            return None
        if str(parsed) != text:
            return None
        return parsed.bytes_le if self.binary else text


def parse_generalized_time(text: str) -> datetime | None:
    """RFC 4517 §3.3.13 GeneralizedTime (and AD's `.0Z` form) as an aware datetime.

    The fraction belongs to the last element written (§3.3.13: `g-fraction` after the
    hour, the minute or the second), so `2026120201.5Z` is 01:30:00, not 01:00:00.5; it
    is cut (never rounded) to the microsecond, all a datetime holds. None for what a
    datetime cannot hold: year 0000 (valid GeneralizedTime), or a leap second.
    """
    match = _GENERALIZED.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute or 0),
            int(second or 0),
            tzinfo=UTC,
        )
        if fraction:
            unit = 1 if second else 60 if minute else 3600  # seconds of the last element
            micros = int(fraction) * unit * 1_000_000 // 10 ** len(fraction)
            moment += timedelta(microseconds=micros)
    except (ValueError, OverflowError):
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = int(zone[1:3]) * 60 + int(zone[3:5] or 0)
        moment = moment.replace(tzinfo=timezone(sign * timedelta(minutes=offset)))
    return moment


def to_directory(value: Any) -> str | bytes:
    """A field value as an attribute value: booleans TRUE/FALSE (RFC 4517 §3.3.3)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, bytes):
        return value
    if isinstance(value, datetime):
        return generalized_time(value)
    return str(value)


_CYCLE = 400
"""Years after which the Gregorian calendar repeats itself day for day (146,097 days)."""


def generalized_time(moment: datetime, digits: str | None = None) -> str:
    """RFC 4517 §3.3.13 in UTC, exact: 20261122153000Z, 20261122153000.5Z, 09990101000000Z.

    The year always has its 4 digits (strftime's %Y does not pad years before 1000 on
    glibc: `10101000000Z` is no GeneralizedTime, and slapd evaluates a filter holding it
    as Undefined). The fraction of a second is kept, its trailing zeros dropped, and left
    out when there is none, so a whole second reads as it always did and a written value
    is the moment it was given. `digits`: the fraction as written, when it has more than a
    datetime's 6 digits (a filter operand), so that a comparison stays exact.

    A moment in year 1 that an offset puts before 0001-01-01T00:00Z is written in year
    0000, which the syntax allows and a datetime cannot hold. OverflowError past
    9999-12-31T23:59:59.999999Z, which 4 digits of year cannot write.
    """
    offset = moment.utcoffset() or timedelta(0)
    local = moment.replace(tzinfo=None)
    early = local.year <= _CYCLE
    if early:  # computed 400 years later, where subtracting the offset cannot underflow
        local = local.replace(year=local.year + _CYCLE)
    utc = local - offset  # OverflowError only past year 9999
    year = utc.year - _CYCLE if early else utc.year
    fraction = f"{utc.microsecond:06d}"
    if digits is not None and digits[:6].ljust(6, "0") == fraction:
        fraction = digits
    fraction = fraction.rstrip("0")
    return f"{year:04d}{utc:%m%d%H%M%S}{'.' + fraction if fraction else ''}Z"


def text_of(value: Any) -> Any:
    """An attribute value as read: bytes that are UTF-8 become text."""
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value)
    return value
