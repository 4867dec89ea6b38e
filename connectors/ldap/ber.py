"""LDAP search requests encoded in BER directly (RFC 4511 §4.5.1, §5.1; X.690 §8).

ldap3 builds each request as a tree of pyasn1 objects and has pyasn1 encode it: for a
lookup (one search with one equality filter) that costs a third of the service's time
spent on the directory, and as much again in the direct use of ldap3 it is measured
against. A search request is a handful of nested TLVs, written here from the filter
string (RFC 4515) the connector builds anyway. ldap3 still sends it, reads and decodes the
answer, follows referrals and raises its exceptions: only the encoding is replaced.

A filter this module cannot parse raises FilterSyntax, and the caller lets ldap3 encode
the request as before, so a filter is never sent in a form ldap3 would not have sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# Universal tags (X.690) and LDAP's context-specific and application tags (RFC 4511).
_BOOLEAN, _INTEGER, _OCTETS, _ENUMERATED, _SEQUENCE, _SET = 0x01, 0x02, 0x04, 0x0A, 0x30, 0x31
_SEARCH_REQUEST = 0x63  # [APPLICATION 3], constructed
_ADD_REQUEST = 0x68  # [APPLICATION 8], constructed
_CONTROLS = 0xA0  # [0], constructed
_AND, _OR, _NOT = 0xA0, 0xA1, 0xA2
_EQUALITY, _SUBSTRINGS, _GREATER_OR_EQUAL, _LESS_OR_EQUAL = 0xA3, 0xA4, 0xA5, 0xA6
_PRESENT, _APPROXIMATE, _EXTENSIBLE = 0x87, 0xA8, 0xA9
_INITIAL, _ANY, _FINAL = 0x80, 0x81, 0x82
_RULE, _TYPE, _MATCH_VALUE, _DN_ATTRIBUTES = 0x81, 0x82, 0x83, 0x84

DEREF_ALWAYS = 3
"""What ldap3's Connection.search asks for unless told otherwise."""


Control = tuple[str, bool, bytes | None]
"""A request control: its type (an OID), its criticality and its encoded value, if any."""


class FilterSyntax(ValueError):
    """A filter string this module does not encode (ldap3 then encodes the request)."""


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def integer(value: int, tag: int = _INTEGER) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)  # room for the sign bit
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def octets(value: str | bytes, tag: int = _OCTETS) -> bytes:
    return tlv(tag, value.encode() if isinstance(value, str) else value)


def boolean(value: bool, tag: int = _BOOLEAN) -> bytes:
    return tlv(tag, b"\x01" if value else b"\x00")  # as ldap3 (pyasn1) sends it


def search_request(
    base: str, scope: int, search_filter: str, attributes: Sequence[str], *, size_limit: int = 0
) -> bytes:
    """A SearchRequest (RFC 4511 §4.5.1), as ldap3 would encode it. FilterSyntax when the
    filter is not one this module encodes."""
    return tlv(
        _SEARCH_REQUEST,
        octets(base)
        + integer(scope, _ENUMERATED)
        + integer(DEREF_ALWAYS, _ENUMERATED)
        + integer(size_limit)
        + integer(0)  # timeLimit: none asked for
        + boolean(False)  # typesOnly
        + encode_filter(search_filter)
        + tlv(_SEQUENCE, b"".join(octets(name) for name in attributes)),
    )


def add_request(entry: str, attributes: Mapping[str, Sequence[str | bytes]]) -> bytes:
    """An AddRequest (RFC 4511 §4.7), as ldap3 would encode it: each attribute with its
    values in the order given, text as UTF-8."""
    encoded = b""
    for name, values in attributes.items():
        encoded += tlv(_SEQUENCE, octets(name) + tlv(_SET, b"".join(octets(v) for v in values)))
    return tlv(_ADD_REQUEST, octets(entry) + tlv(_SEQUENCE, encoded))


def message(message_id: int, operation: bytes, controls: Sequence[Control] = ()) -> bytes:
    """An LDAPMessage (RFC 4511 §4.2) around an encoded operation, ready for the socket."""
    return tlv(_SEQUENCE, integer(message_id) + operation + _controls(controls))


def search_message(
    message_id: int,
    base: str,
    scope: int,
    search_filter: str,
    attributes: Sequence[str],
    *,
    size_limit: int = 0,
    controls: Sequence[Control] = (),
) -> bytes:
    request = search_request(base, scope, search_filter, attributes, size_limit=size_limit)
    return message(message_id, request, controls)


def paged_results(size: int, cookie: bytes | None) -> bytes:
    """The value of the Simple Paged Results control (RFC 2696 §2)."""
    return tlv(_SEQUENCE, integer(size) + octets(cookie or b""))


def _controls(controls: Sequence[Control]) -> bytes:
    if not controls:
        return b""
    encoded = b""
    for oid, critical, value in controls:
        body = octets(oid) + (boolean(True) if critical else b"")
        if value is not None:
            body += octets(value)
        encoded += tlv(_SEQUENCE, body)
    return tlv(_CONTROLS, encoded)


# --- Filters (RFC 4515) -------------------------------------------------------------------

_ESCAPE = re.compile(rb"\\([0-9A-Fa-f]{2})")
_ATTRIBUTE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.;-]*\Z")


def encode_filter(text: str) -> bytes:
    """The BER Filter (RFC 4511 §4.5.1.7) of an RFC 4515 filter string."""
    encoded, end = _filter(text, 0)
    if end != len(text):
        raise FilterSyntax(f"text after the filter at {end}")
    return encoded


def _filter(text: str, at: int) -> tuple[bytes, int]:
    if not text.startswith("(", at):
        raise FilterSyntax(f"'(' expected at {at}")
    at += 1
    if at >= len(text):
        raise FilterSyntax("unterminated filter")
    kind = text[at]
    if kind in "&|":
        at += 1
        parts = b""
        while text.startswith("(", at):
            part, at = _filter(text, at)
            parts += part
        if not parts:
            raise FilterSyntax("an empty filter list")
        encoded = tlv(_AND if kind == "&" else _OR, parts)
    elif kind == "!":
        inner, at = _filter(text, at + 1)
        encoded = tlv(_NOT, inner)
    else:
        end = _item_end(text, at)
        encoded = _item(text[at:end])
        at = end
    if not text.startswith(")", at):
        raise FilterSyntax(f"')' expected at {at}")
    return encoded, at + 1


def _item_end(text: str, at: int) -> int:
    """The index of the ')' that closes an item; escaped characters are `\\XX`."""
    end = text.find(")", at)
    if end < 0 or "(" in text[at:end]:
        raise FilterSyntax("an item is not closed")
    return end


def _item(item: str) -> bytes:
    if ":=" in item:
        return _extensible(item)
    for operator, tag in (("~=", _APPROXIMATE), (">=", _GREATER_OR_EQUAL), ("<=", _LESS_OR_EQUAL)):
        name, found, value = item.partition(operator)
        if found:
            return tlv(tag, octets(_attribute(name)) + octets(_value(value)))
    name, found, value = item.partition("=")
    if not found:
        raise FilterSyntax("no operator in an item")
    if value == "*":
        return tlv(_PRESENT, _attribute(name).encode())
    attribute = octets(_attribute(name))
    if "*" not in value:
        return tlv(_EQUALITY, attribute + octets(_value(value)))
    pieces = value.split("*")
    substrings = b""
    if pieces[0]:
        substrings += octets(_value(pieces[0]), _INITIAL)
    for middle in pieces[1:-1]:
        if not middle:
            raise FilterSyntax("an empty middle substring")
        substrings += octets(_value(middle), _ANY)
    if pieces[-1]:
        substrings += octets(_value(pieces[-1]), _FINAL)
    return tlv(_SUBSTRINGS, attribute + tlv(_SEQUENCE, substrings))


def _extensible(item: str) -> bytes:
    left, _, value = item.partition(":=")
    parts = left.split(":")
    name, flags = parts[0], parts[1:]
    dn_attributes = False
    if flags and flags[0].lower() == "dn":
        dn_attributes, flags = True, flags[1:]
    if len(flags) > 1 or (not name and not flags):
        raise FilterSyntax("a malformed extensible match")
    body = b""
    if flags:
        body += octets(_attribute(flags[0]), _RULE)
    if name:
        body += octets(_attribute(name), _TYPE)
    body += octets(_value(value), _MATCH_VALUE)
    if dn_attributes:
        body += boolean(True, _DN_ATTRIBUTES)
    return tlv(_EXTENSIBLE, body)


def _attribute(name: str) -> str:
    if not _ATTRIBUTE.match(name):
        raise FilterSyntax(f"not an attribute description: {name!r}")
    return name


def _value(value: str) -> bytes:
    """An assertion value: UTF-8, with `\\XX` escapes turned into their bytes."""
    if "*" in value or "(" in value or ")" in value:
        raise FilterSyntax("an unescaped special character in a value")
    raw = value.encode()
    if b"\\" in _ESCAPE.sub(b"", raw):
        raise FilterSyntax("a backslash that starts no escape")
    return _ESCAPE.sub(lambda match: bytes((int(match[1], 16),)), raw)
