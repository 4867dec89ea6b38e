"""Distinguished names: RFC 4514 escaping, joining and comparing.

Every value that reaches a DN (a userName behind `uid={userName}`) goes through
`escape_value`, so `,cn=admin` names one RDN value and never a second RDN.
"""

from __future__ import annotations

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

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
        parts = parse_dn(dn, escape=False, strip=True)
    except (LDAPInvalidDnError, ValueError, IndexError):
        return dn.strip().lower()
    return ",".join(
        f"{attr.lower()}={escape_value(_unescaped(value).lower())}" for attr, value, _ in parts
    )


def _unescaped(value: str) -> str:
    """RFC 4514 escapes removed, `\\,` and `\\2c` both read as `,`."""
    out: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            pair = value[index + 1 : index + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(chr(int(pair, 16)))
                index += 3
                continue
            out.append(value[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def is_under(dn: str, container: str) -> bool:
    """Whether `dn` lies below `container` (or is it)."""
    inner, outer = normalized(dn), normalized(container)
    return inner == outer or inner.endswith("," + outer)


def first_value(dn: str) -> str:
    """The value of the first RDN, unescaped (`uid=a\\,b,ou=x` gives `a,b`)."""
    parts = parse_dn(dn, escape=False, strip=True)
    return _unescaped(parts[0][1])
