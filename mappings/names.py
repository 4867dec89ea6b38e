"""A resource's name (a user's userName, a group's displayName) in one Unicode form.

"José" reaches a service composed (é, U+00E9) or decomposed (e and U+0301): one name to
whoever reads it, and to a directory (OpenLDAP and Active Directory match the two as
one), but two to a SQL column and its unique index, which would then hold two accounts
for one person. A name a client sends is therefore written in Normalization Form C, the
form the PRECIS username profiles give it (RFC 8265 §3.3 and §3.4, Normalization Rule),
whatever the backend; a filter compares the name in that form too.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from connectors.base import Kind

NAME_ATTRIBUTE = {Kind.USERS: "userName", Kind.GROUPS: "displayName"}
"""The attribute that names a resource of each kind (RFC 7643 §4.1.1, §4.2), in schema
spelling: what identifies it to the client, and what this module keeps in one form."""


def composed(name: Any, stored: Any = None) -> Any:
    """`name` in NFC; `stored` itself when it is the same name in another form.

    A record written before (or by another program) in another form keeps it: a client
    that sends its name back unchanged must not rename it (on LDAP, where the name is the
    entry's RDN, that would be a modrdn).
    """
    if not isinstance(name, str):
        return name
    nfc = unicodedata.normalize("NFC", name)
    if isinstance(stored, str) and unicodedata.normalize("NFC", stored) == nfc:
        return stored
    return nfc


def spellings(name: str) -> list[str]:
    """The forms a stored name equal to `name` may have: NFC first (what this service
    writes), then NFD and the form sent, each once (a row written in another form by
    another program is still found by `eq`)."""
    forms = [composed(name), unicodedata.normalize("NFD", name), name]
    return list(dict.fromkeys(forms))
