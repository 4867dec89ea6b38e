"""What the directory's own schema (RFC 4512 §4.2) says of the attributes a mapping names.

Read once when the connector opens, from the subschema subentry. Two uses:

- `scim-bridge check` reports an attribute type or object class the directory does not
  know, instead of the first write failing with an object-class violation;
- a filter asks only what the directory can evaluate: `uid` has no ORDERING rule in
  OpenLDAP's core schema, so `(uid>=b)` is Undefined and silently matches nothing
  (RFC 4511 §4.5.1.7). Such a comparison is refused, as a filter on an unmapped
  attribute is.

A directory that publishes no matching rules for an attribute (Active Directory describes
syntaxes only) is taken to support every comparison: nothing is refused on a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.protocol.rfc4512 import SchemaInfo


@dataclass(frozen=True)
class AttributeRules:
    """The matching rules of one attribute type, its superiors' included."""

    equality: bool
    ordering: bool
    substring: bool

    @property
    def described(self) -> bool:
        """Whether the directory publishes any matching rule for the attribute."""
        return self.equality or self.ordering or self.substring


@dataclass(frozen=True)
class DirectorySchema:
    """Attribute types (by every name, lower case) and object class names."""

    attributes: dict[str, AttributeRules]
    classes: frozenset[str]

    @classmethod
    def from_ldap3(cls, schema: Any) -> DirectorySchema:
        """From ldap3's parsed SchemaInfo (`Server(get_info=SCHEMA).schema`)."""
        types = schema.attribute_types or {}
        infos = {name.lower(): info for name, info in types.items()}
        by_oid = {info.oid: info for info in infos.values() if getattr(info, "oid", None)}

        def rules(info: Any, seen: frozenset[str] = frozenset()) -> AttributeRules:
            # ldap3 2.9.1 stores SUBSTR as `substr` although it declares `substring`.
            own = AttributeRules(
                equality=bool(info.equality),
                ordering=bool(info.ordering),
                substring=bool(getattr(info, "substr", None) or info.substring),
            )
            for superior in info.superior or ():
                parent = infos.get(str(superior).lower()) or by_oid.get(superior)
                if parent is None or str(superior).lower() in seen:
                    continue
                inherited = rules(parent, seen | {str(superior).lower()})
                own = AttributeRules(
                    equality=own.equality or inherited.equality,
                    ordering=own.ordering or inherited.ordering,
                    substring=own.substring or inherited.substring,
                )
            return own

        attributes = {name: rules(info) for name, info in infos.items()}
        classes = frozenset(name.lower() for name in (schema.object_classes or {}))
        return cls(attributes, classes)

    def knows_attribute(self, name: str) -> bool:
        return name.lower() in self.attributes

    def knows_class(self, name: str) -> bool:
        return name.lower() in self.classes

    def can_order(self, name: str) -> bool:
        found = self.attributes.get(name.lower())
        return found is None or not found.described or found.ordering

    def can_match_substrings(self, name: str) -> bool:
        found = self.attributes.get(name.lower())
        return found is None or not found.described or found.substring


def read_schema(connection: Any) -> DirectorySchema | None:
    """The schema of the directory behind a bound ldap3 connection; None when it hides it.

    The subschema subentry is found through the root DSE (RFC 4512 §5.1).
    """
    connection.search("", "(objectClass=*)", ldap3.BASE, attributes=["subschemaSubentry"])
    root = (connection.response or [{}])[0].get("attributes") or {}
    located = root.get("subschemaSubentry") or []
    entry = located[0] if isinstance(located, list) and located else located
    if not entry:
        return None
    connection.search(
        str(entry),
        "(objectClass=subschema)",
        ldap3.BASE,
        attributes=["attributeTypes", "objectClasses"],
    )
    found = [item for item in connection.response or [] if item.get("type") == "searchResEntry"]
    if not found:
        return None
    parsed = SchemaInfo(str(entry), dict(found[0]["attributes"]), found[0]["raw_attributes"])
    if not parsed.attribute_types:
        return None
    return DirectorySchema.from_ldap3(parsed)


ASSERTION = "1.3.6.1.1.12"
"""RFC 4528 Assertion control: a write made only if the entry matches a filter."""

POST_READ = "1.3.6.1.1.13.2"
"""RFC 4527 Post-Read control: a write answers with the entry as it now is."""


def supported_controls(connection: Any) -> frozenset[str]:
    """The controls the root DSE announces (RFC 4512 §5.1); empty when it hides them."""
    connection.search("", "(objectClass=*)", ldap3.BASE, attributes=["supportedControl"])
    root = (connection.response or [{}])[0].get("attributes") or {}
    return frozenset(str(each) for each in root.get("supportedControl") or [])
