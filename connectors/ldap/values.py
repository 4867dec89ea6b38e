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
    """RFC 4517 §3.3.13 GeneralizedTime (and AD's `.0Z` form) as an aware datetime."""
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
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
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


def generalized_time(moment: datetime) -> str:
    """RFC 4517 §3.3.13, in UTC: 20261122153000Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def text_of(value: Any) -> Any:
    """An attribute value as read: bytes that are UTF-8 become text."""
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value)
    return value
