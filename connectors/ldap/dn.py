"""Distinguished names: RFC 4514 escaping, joining and comparing.

Every value that reaches a DN (a userName behind `uid={userName}`) goes through
`escape_value`, so `,cn=admin` names one RDN value and never a second RDN.
"""

from __future__ import annotations

_SPECIAL = frozenset('"+,;<>\\=')


def escape_value(value: str) -> str:
    """An attribute value as an RDN value (RFC 4514 §2.4).

    Escapes the special characters anywhere, `#` and space at the start, space at the
    end, and NUL as `\\00`; everything else (UTF-8 included) stays as it is.
    """
    out: list[str] = []
    last = len(value) - 1
    for index, char in enumerate(value):
        if char == "\x00":
            out.append("\\00")
        elif char in _SPECIAL:
            out.append("\\" + char)
        elif char == "#" and index == 0:
            out.append("\\#")
        elif char == " " and index in (0, last):
            out.append("\\ ")
        else:
            out.append(char)
    return "".join(out)


def rdn(attribute: str, value: str) -> str:
    return f"{attribute}={escape_value(value)}"


def join(relative: str, parent: str) -> str:
    """`relative` under `parent`; either may be empty."""
    return ",".join(part for part in (trimmed(relative), trimmed(parent)) if part)


def trimmed(dn: str) -> str:
    """Surrounding spaces removed, but not an escaped one (`uid=\\ a\\ ` ends in a space)."""
    dn = dn.lstrip()
    while dn.endswith(" ") and not dn.endswith("\\ "):
        dn = dn[:-1]
    return dn


def normalized(dn: str) -> str:
    """A DN in a form two spellings of the same name share (case, spaces, escapes).

    Attribute types and values compare case-insensitively, which is what the naming
    attributes in use (uid, cn, ou, dc) do. A DN that does not parse compares as itself.
    """
    try:
        rdns = parsed(dn)
    except ValueError:
        return dn.strip().lower()
    return ",".join(
        "+".join(f"{attr.lower()}={escape_value(value.lower())}" for attr, value in rdn)
        for rdn in rdns
    )


def parsed(dn: str) -> list[list[tuple[str, str]]]:
    """The RDNs of a DN, each a list of (attribute type, unescaped value) (RFC 4514 §3).

    Lenient where RFC 4514 §2.4 lets writers differ: `#` or `=` inside a value may come
    escaped or not (slapd writes `cn=C# devs`, which ldap3's parser refuses), and spaces
    around `,`, `+` and `=` are ignored. ValueError when an RDN has no `=`.
    """
    if not dn.strip():
        return []
    rdns: list[list[tuple[str, str]]] = []
    for rdn in _split_unescaped(dn, ","):
        avas: list[tuple[str, str]] = []
        for ava in _split_unescaped(rdn, "+"):
            attribute, equals, value = ava.partition("=")
            if not equals or not attribute.strip():
                raise ValueError(f"not an attribute=value pair: {ava!r}")
            avas.append((attribute.strip(), _unescaped(trimmed(value))))
        rdns.append(avas)
    return rdns


def split_first(dn: str) -> tuple[str, str]:
    """(first RDN, parent DN), split at the first comma no backslash escapes."""
    first, *rest = _split_unescaped(dn, ",")
    return trimmed(first), trimmed(",".join(rest))


def _split_unescaped(text: str, separator: str) -> list[str]:
    """`text` split at each `separator` that no backslash escapes."""
    parts: list[str] = []
    start = index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == separator:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    parts.append(text[start:])
    return parts


def _unescaped(value: str) -> str:
    """RFC 4514 escapes removed: `\\,` and `\\2c` both read as `,`, and hex pairs are
    UTF-8 bytes (`\\c3\\a9` is `é`)."""
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            pair = value[index + 1 : index + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                index += 3
                continue
            out += value[index + 1].encode()
            index += 2
            continue
        out += char.encode()
        index += 1
    # Bytes that are not UTF-8 stay distinct (as surrogates), so that two such names
    # never compare equal.
    return out.decode("utf-8", errors="surrogateescape")


def without_suffix(relative: str, base: str) -> str | None:
    """`relative` without `base` at its end, when it ends with it and names more: a value
    meant relative to a base DN but written whole (`ou=archive,dc=example,dc=org` with
    the base `dc=example,dc=org` gives `ou=archive`); None otherwise."""
    try:
        count, length = len(parsed(base)), len(parsed(relative))
    except ValueError:
        return None
    if count == 0 or length <= count:
        return None
    parts = _split_unescaped(relative, ",")
    if normalized(",".join(parts[-count:])) != normalized(base):
        return None
    return ",".join(trimmed(part) for part in parts[:-count])


def is_under(dn: str, container: str) -> bool:
    """Whether `dn` lies below `container` (or is it)."""
    inner, outer = normalized(dn), normalized(container)
    return inner == outer or inner.endswith("," + outer)


def first_value(dn: str) -> str:
    """The value of the first RDN, unescaped (`uid=a\\,b,ou=x` gives `a,b`)."""
    rdns = parsed(dn)
    if not rdns:
        raise ValueError("an empty DN has no first value")
    return rdns[0][0][1]
