"""What the directory's own schema (RFC 4512 §4.2) says of the attributes a mapping names.

Read once when the connector opens, from the subschema subentry. Two uses:

- `scim-bridge check` reports an attribute type or object class the directory does not
  know, an attribute the mapping's object classes do not allow, an attribute they
  require that the mapping never writes, several values for a SINGLE-VALUE type, a
  reference in an attribute that does not hold DNs, and two names of one attribute type
  (`sn` and `surname`), instead of the first write failing with an object-class
  violation (`mapping_problems`);
- a filter asks only what the directory can evaluate: `uid` has no ORDERING rule in
  OpenLDAP's core schema, so `(uid>=b)` is Undefined and silently matches nothing
  (RFC 4511 §4.5.1.7). Such a comparison is refused, as a filter on an unmapped
  attribute is.

A directory that publishes no matching rules for an attribute (Active Directory describes
syntaxes only) is taken to support every comparison: nothing is refused on a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.protocol.rfc4512 import SchemaInfo

from connectors.base import (
    ENABLED_BY_LOCATION,
    BackendSchema,
    DirectoryObject,
    ObjectSpec,
    mapping_origin,
    rule_key,
)
from connectors.ldap.values import to_directory

_OPERATIONAL = frozenset({"DIRECTORY_OPERATION", "DISTRIBUTED_OPERATION", "DSA_OPERATION"})
"""ldap3's names of the usages of RFC 4512 §4.1.2 other than userApplications."""

DN_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.12"
"""RFC 4517 §3.3.9 DN: the syntax of an attribute holding references to entries."""

_SYNTAX_FORMS = {
    "1.3.6.1.4.1.1466.115.121.1.7": ("Boolean", re.compile(r"TRUE|FALSE")),
    "1.3.6.1.4.1.1466.115.121.1.24": (
        "Generalized Time",
        re.compile(r"\d{10}(\d{2}(\d{2})?)?([.,]\d+)?(Z|[+-]\d{2}(\d{2})?)"),
    ),
    "1.3.6.1.4.1.1466.115.121.1.27": ("Integer", re.compile(r"-?[1-9]\d*|0")),
    "1.3.6.1.4.1.1466.115.121.1.36": ("Numeric String", re.compile(r"[\d ]+")),
}
"""The forms of some syntaxes (RFC 4517 §3.3.3, §3.3.13, §3.3.16, §3.3.23) whose values a
mapping fixes (a `map`'s values, a constant): one of another form is refused by the
directory (invalidAttributeSyntax) on every write of it. A value the check cannot judge
(a syntax not listed here) passes."""


@dataclass(frozen=True)
class AttributeRules:
    """The matching rules of one attribute type, its superiors' included."""

    equality: bool
    ordering: bool
    substring: bool
    equality_rule: str | None = None
    """The EQUALITY rule's name as published (its own or a superior's), lower case."""

    @property
    def described(self) -> bool:
        """Whether the directory publishes any matching rule for the attribute."""
        return self.equality or self.ordering or self.substring


@dataclass(frozen=True)
class AttributeType:
    """What a check needs of one attribute type."""

    name: str
    """Its first name, as the schema spells it: every alias stands for it."""
    single_value: bool
    syntax: str | None
    """The syntax OID, a superior's when it has none of its own; None: unpublished."""
    operational: bool
    """A type the directory keeps outside the object classes (pwdAccountLockedTime)."""


@dataclass(frozen=True)
class DirectorySchema:
    """Attribute types (by every name, lower case) and object class names."""

    attributes: dict[str, AttributeRules]
    classes: frozenset[str]
    types: dict[str, AttributeType] = field(default_factory=dict)
    """Attribute types by every name and OID, lower case."""
    allowed: dict[str, frozenset[str]] = field(default_factory=dict)
    """Object class (lower case) -> the first names (lower case) of the attribute types
    its entries may hold (MUST and MAY, the superior classes' included)."""
    required: dict[str, frozenset[str]] = field(default_factory=dict)
    """Object class (lower case) -> the first names (lower case) of the attribute types
    its entries must hold (MUST, the superior classes' and DIT content rules' included)."""
    fills_required: bool = False
    """The directory fills required attributes of its own (Active Directory sets
    instanceType, objectCategory, sAMAccountName, groupType...) and its schema does not
    say which: a required attribute nothing writes is then no problem of the mapping."""
    class_spellings: frozenset[str] = frozenset()
    """Every object class name as the schema spells it (`classes` holds them lower case)."""
    rule_uses: dict[str, frozenset[str]] = field(default_factory=dict)
    """Matching rule (each name and OID, lower case) -> the first names (lower case) of
    the attribute types it applies to, as the directory's matchingRuleUse says (RFC 4512
    §4.1.4): which rules an extensible match may name for an attribute."""

    @classmethod
    def from_ldap3(cls, schema: Any, *, fills_required: bool = False) -> DirectorySchema:
        """From ldap3's parsed SchemaInfo (`Server(get_info=SCHEMA).schema`)."""
        infos = _by_every_name(schema.attribute_types)
        by_oid = {info.oid: info for info in infos.values() if getattr(info, "oid", None)}

        def rules(info: Any, seen: frozenset[str] = frozenset()) -> AttributeRules:
            # ldap3 2.9.1 stores SUBSTR as `substr` although it declares `substring`.
            own = AttributeRules(
                equality=bool(info.equality),
                ordering=bool(info.ordering),
                substring=bool(getattr(info, "substr", None) or info.substring),
                equality_rule=_first_name(info.equality),
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
                    equality_rule=own.equality_rule or inherited.equality_rule,
                )
            return own

        def syntax(info: Any, seen: frozenset[str] = frozenset()) -> str | None:
            if info.syntax:
                return str(info.syntax)
            for superior in info.superior or ():
                parent = infos.get(str(superior).lower())
                if parent is not None and str(superior).lower() not in seen:
                    return syntax(parent, seen | {str(superior).lower()})
            return None

        def described(info: Any) -> AttributeType:
            return AttributeType(
                name=str((info.name or [info.oid])[0]),
                single_value=bool(info.single_value),
                syntax=syntax(info),
                operational=str(info.usage) in _OPERATIONAL,
            )

        attributes = {name: rules(info) for name, info in infos.items()}
        by_class = _by_every_name(schema.object_classes)

        def first_names(described: Any, *, may: bool = True) -> set[str]:
            """The attribute types a class or rule lists (MUST, and MAY unless `may` is
            false), by their first name."""
            own = [*(described.must_contain or ())]
            own += [*(described.may_contain or ())] if may else []
            return {
                str(infos[name.lower()].name[0]).lower() if name.lower() in infos else name.lower()
                for name in map(str, own)
            }

        def allowed(
            info: Any, seen: frozenset[str] = frozenset(), *, may: bool = True
        ) -> frozenset[str]:
            found = first_names(info, may=may)
            for superior in info.superior or ():
                parent = by_class.get(str(superior).lower())
                if parent is not None and str(superior).lower() not in seen:
                    found |= allowed(parent, seen | {str(superior).lower()}, may=may)
            return frozenset(found)

        permitted = {name: allowed(info) for name, info in by_class.items()}
        required = {name: allowed(info, may=False) for name, info in by_class.items()}
        # DIT content rules (RFC 4512 §4.1.6) let a structural class's entries hold
        # auxiliary classes and more attributes: Active Directory's `user` gets
        # sAMAccountName from securityPrincipal that way, not from its class definition.
        rules_by_id = {id(each): each for each in (schema.dit_content_rules or {}).values()}
        for rule in rules_by_id.values():
            auxiliaries = [str(aux).lower() for aux in rule.auxiliary_classes or ()]
            extra = frozenset(first_names(rule)).union(
                *(permitted.get(aux, frozenset()) for aux in auxiliaries)
            )
            structural = by_class.get(str(rule.oid).lower())
            for name in [*(structural.name or ()), structural.oid] if structural else ():
                permitted[str(name).lower()] = permitted.get(str(name).lower(), frozenset()) | extra
                required[str(name).lower()] = required.get(str(name).lower(), frozenset()) | (
                    first_names(rule, may=False)
                )
        return cls(
            attributes,
            frozenset(by_class),
            types={name: described(info) for name, info in infos.items()},
            allowed=permitted,
            required=required,
            fills_required=fills_required,
            rule_uses=_rule_uses(schema, infos),
            class_spellings=frozenset(
                str(name) for info in by_class.values() for name in info.name or () if name
            ),
        )

    def type_of(self, name: str) -> AttributeType | None:
        """The attribute type of any of its names or its OID."""
        return self.types.get(name.lower())

    def same_type(self, first: str, second: str) -> bool:
        """Whether two names are one attribute type (`cn` and `commonName`)."""
        a, b = self.type_of(first), self.type_of(second)
        if a is None or b is None:
            return first.lower() == second.lower()
        return a.name.lower() == b.name.lower()

    def knows_attribute(self, name: str) -> bool:
        return name.lower() in self.attributes

    def attribute_names(self) -> list[str]:
        """Every attribute type's name, as the schema spells its first (to name the one a
        misspelt name most likely meant); lower case where the schema told no more."""
        return sorted({described.name for described in self.types.values()} or self.attributes)

    def class_names(self) -> list[str]:
        """Every object class name, as the schema spells it (lower case where it told no
        more)."""
        return sorted(self.class_spellings or self.classes)

    def knows_class(self, name: str) -> bool:
        return name.lower() in self.classes

    def can_order(self, name: str) -> bool:
        found = self.attributes.get(name.lower())
        return found is None or not found.described or found.ordering

    def can_match_substrings(self, name: str) -> bool:
        found = self.attributes.get(name.lower())
        return found is None or not found.described or found.substring

    def case_exact_rule(self, name: str) -> str | None:
        """The matching rule that compares the attribute's values with case, when its own
        equality rule ignores case; None when it already compares with case or the schema
        does not say.

        SCIM's externalId is caseExact (RFC 7643 §3.1) and the presets keep it in
        `description`, whose caseIgnoreMatch would find "abc" for "AbC". The case-exact
        counterparts are RFC 4517's own (§4.2.4, §4.2.3), usable in an extensible match
        where the directory says they apply to the attribute (matchingRuleUse): OpenLDAP
        does; a directory that publishes no rule uses is left to its own rules.
        """
        found, described = self.attributes.get(name.lower()), self.type_of(name)
        if found is None or found.equality_rule is None or described is None:
            return None
        rule = _CASE_EXACT.get(found.equality_rule)
        if rule is None or described.name.lower() not in self.rule_uses.get(rule.lower(), ()):
            return None  # not known to apply: an unknown rule would be Undefined, no match
        return rule


_CASE_EXACT = {
    "caseignorematch": "caseExactMatch",
    "2.5.13.2": "caseExactMatch",
    "caseignoreia5match": "caseExactIA5Match",
    "1.3.6.1.4.1.1466.109.114.2": "caseExactIA5Match",
}
"""Case-ignoring equality rules (RFC 4517 §4.2.11, §4.2.10), by name or OID as a schema
may publish them, and the rules comparing with case (§4.2.4, §4.2.3)."""


def _rule_uses(schema: Any, infos: dict[str, Any]) -> dict[str, frozenset[str]]:
    """`DirectorySchema.rule_uses` from ldap3's parsed matchingRuleUse values."""

    def first_name(name: str) -> str:
        info = infos.get(name.lower())
        return str(info.name[0]).lower() if info is not None and info.name else name.lower()

    return {
        rule: frozenset(first_name(str(name)) for name in use.apply_to or ())
        for rule, use in _by_every_name(schema.matching_rule_uses).items()
    }


def _first_name(published: Any) -> str | None:
    """ldap3 gives a matching rule as a list of names (or one name, or None)."""
    if isinstance(published, (list, tuple)):
        published = published[0] if published else None
    return str(published).lower() if published else None


def read_schema(connection: Any) -> DirectorySchema | None:
    """The schema of the directory behind a bound ldap3 connection; None when it hides it.

    The subschema subentry is found through the root DSE (RFC 4512 §5.1).
    """
    connection.search(
        "", "(objectClass=*)", ldap3.BASE, attributes=["subschemaSubentry", "supportedCapabilities"]
    )
    root = (connection.response or [{}])[0].get("attributes") or {}
    capabilities = {str(each) for each in root.get("supportedCapabilities") or []}
    located = root.get("subschemaSubentry") or []
    entry = located[0] if isinstance(located, list) and located else located
    if not entry:
        return None
    connection.search(
        str(entry),
        "(objectClass=subschema)",
        ldap3.BASE,
        attributes=["attributeTypes", "objectClasses", "matchingRuleUse"],
    )
    found = [item for item in connection.response or [] if item.get("type") == "searchResEntry"]
    if not found:
        return None
    parsed = SchemaInfo(str(entry), dict(found[0]["attributes"]), found[0]["raw_attributes"])
    if not parsed.attribute_types:
        return None
    return DirectorySchema.from_ldap3(parsed, fills_required=ACTIVE_DIRECTORY in capabilities)


ACTIVE_DIRECTORY = "1.2.840.113556.1.4.800"
"""LDAP_CAP_ACTIVE_DIRECTORY_OID, in the root DSE's supportedCapabilities (MS-ADTS
3.1.1.3.4.3): the server is Active Directory (or one that behaves as it does)."""

ASSERTION = "1.3.6.1.1.12"
"""RFC 4528 Assertion control: a write made only if the entry matches a filter."""

POST_READ = "1.3.6.1.1.13.2"
"""RFC 4527 Post-Read control: a write answers with the entry as it now is."""


def _by_every_name(described: Any) -> dict[str, Any]:
    """ldap3's schema definitions by each of their names and their OID, lower case: ldap3
    keys them by the first name only, an alias (surname, commonName) would be unknown."""
    found: dict[str, Any] = {}
    for info in {id(each): each for each in (described or {}).values()}.values():
        for name in [*(info.name or ()), info.oid]:
            if name:
                found[str(name).lower()] = info
    return found


def supported_controls(connection: Any) -> frozenset[str]:
    """The controls the root DSE announces (RFC 4512 §5.1); empty when it hides them."""
    connection.search("", "(objectClass=*)", ldap3.BASE, attributes=["supportedControl"])
    root = (connection.response or [{}])[0].get("attributes") or {}
    return frozenset(str(each) for each in root.get("supportedControl") or [])


def naming_contexts(connection: Any) -> list[str]:
    """The suffixes the root DSE announces (namingContexts, RFC 4512 §5.1): the trees the
    directory holds; empty when it hides them."""
    connection.search("", "(objectClass=*)", ldap3.BASE, attributes=["namingContexts"])
    root = (connection.response or [{}])[0].get("attributes") or {}
    return [str(each) for each in root.get("namingContexts") or []]


def mapping_problems(directory: DirectorySchema, schema: BackendSchema) -> list[str]:
    """What the directory's schema says the mapping cannot write, one line each.

    Names the schema does not know are reported elsewhere (and skipped here): each
    line names the mapping key of the rule that would fail.
    """
    problems: list[str] = []
    members = schema.memberships
    for spec in (schema.users, schema.groups):
        if spec is None or spec.directory is None:
            continue
        entries = spec.directory
        kind = spec.kind.value
        # (mapping key, attribute name) of everything written to an entry of the type.
        written = [
            (rule_key(spec, each), each.name)
            for each in spec.fields
            if each.name != ENABLED_BY_LOCATION
        ]
        written += [(f"{kind}.constants.{name}", name) for name in spec.constants]
        if spec is schema.groups and members is not None and members.field:
            written.append(("groups.members.field", members.field))
        problems += _not_allowed(directory, schema, entries, written)
        problems += _not_written(directory, schema, spec, entries, written)
        problems += _written_twice(directory, schema, spec, entries, written)
        for each in spec.fields:
            found = directory.type_of(each.name)
            if found is None:
                continue
            where = mapping_origin(schema, rule_key(spec, each))
            if each.multi_valued and found.single_value:
                problems.append(
                    f"{where}: the attribute holds several values, but {each.name!r} is "
                    "SINGLE-VALUE in the directory's schema: map one entry "
                    '(emails[type eq "work"].value)'
                )
            if each.reference is not None and found.syntax not in (None, DN_SYNTAX):
                problems.append(
                    f"{where}: a reference is stored as a DN, but {each.name!r} has syntax "
                    f"{found.syntax}, not DN ({DN_SYNTAX})"
                )
            problems += _unfit_values(where, each.name, found, getattr(each, "stored", ()))
        for name, value in spec.constants.items():
            found = directory.type_of(name)
            if found is not None:
                where = mapping_origin(schema, f"{kind}.constants.{name}")
                problems += _unfit_values(where, name, found, (value,))
    return problems


def _unfit_values(where: str, name: str, found: AttributeType, values: Any) -> list[str]:
    """Fixed values of a rule that the attribute's syntax refuses, as one line."""
    form = _SYNTAX_FORMS.get(found.syntax or "")
    if form is None:
        return []
    label, pattern = form
    refused = [
        value for value in values if value is not None and not pattern.fullmatch(_as_written(value))
    ]
    if not refused:
        return []
    shown = ", ".join(repr(_as_written(value)) for value in refused)
    return [
        f"{where}: {shown} cannot be stored in {name!r}, whose syntax is {label} "
        f"({found.syntax}): the directory would refuse every write of it"
    ]


def _as_written(value: Any) -> str:
    """A fixed value as the connector writes it (to_directory), as text."""
    written = to_directory(value)
    return written.decode(errors="replace") if isinstance(written, bytes) else written


def _not_allowed(
    directory: DirectorySchema,
    schema: BackendSchema,
    entries: DirectoryObject,
    written: list[tuple[str, str]],
) -> list[str]:
    """Attributes that none of the entry's object classes allows (an objectClassViolation)."""
    classes = [name.lower() for name in entries.classes]
    if "extensibleobject" in classes or any(name not in directory.allowed for name in classes):
        return []  # any attribute goes, or an unknown class is reported already
    allowed = frozenset().union(*(directory.allowed[name] for name in classes))
    problems = []
    for key, name in written:
        found = directory.type_of(name)
        if found is None or found.operational or found.name.lower() in allowed:
            continue
        problems.append(
            f"{mapping_origin(schema, key)}: {name!r} is allowed by none of the object classes "
            f"{', '.join(entries.classes)}"
        )
    return problems


def _not_written(
    directory: DirectorySchema,
    schema: BackendSchema,
    spec: ObjectSpec,
    entries: DirectoryObject,
    written: list[tuple[str, str]],
) -> list[str]:
    """Attributes the entry's object classes require (MUST) that nothing of the mapping
    writes: every create would fail with an objectClassViolation, which a client would
    be told is its value's fault.

    As for a SQL column NOT NULL (connectors.sql.tables), any rule that writes the
    attribute counts, also one of an optional SCIM attribute: a create without it is
    then refused naming that attribute (400 invalidValue), which the client can mend.
    The naming attribute counts: the RDN's value is written with the entry.
    """
    classes = [name.lower() for name in entries.classes]
    if directory.fills_required or any(name not in directory.required for name in classes):
        return []  # the directory fills them itself, or an unknown class is reported already

    def canonical(name: str) -> str:
        found = directory.type_of(name)
        return found.name.lower() if found is not None else name.lower()

    given = {canonical(name) for _, name in written}
    given |= {canonical(entries.naming_attribute), canonical("objectClass")}
    missing: dict[str, list[str]] = {}  # the first class that requires each, in order
    for listed, name in zip(entries.classes, classes, strict=True):
        for attribute in sorted(directory.required[name] - given):
            if not any(attribute in found for found in missing.values()):
                missing.setdefault(listed, []).append(attribute)
    where = mapping_origin(schema, f"{spec.kind.value}.classes")
    return [
        f"{where}: object class {listed!r} requires "
        f"{' and '.join(repr(_spelt(directory, name)) for name in names)}, which the mapping "
        "never writes: every create would fail (map a SCIM attribute to it, with `empty` "
        f"or `default` for when that one is absent, or set it in [{spec.kind.value}.constants])"
        for listed, names in missing.items()
    ]


def _spelt(directory: DirectorySchema, name: str) -> str:
    """An attribute type's name as the schema spells it (`sn`, `telephoneNumber`)."""
    found = directory.type_of(name)
    return found.name if found is not None else name


def _written_twice(
    directory: DirectorySchema,
    schema: BackendSchema,
    spec: ObjectSpec,
    entries: DirectoryObject,
    written: list[tuple[str, str]],
) -> list[str]:
    """Two names of one attribute type (`sn` and `surname`): each write undoes the other.

    The naming attribute counts too: another writer would change it behind the RDN.
    """
    problems = []
    first: dict[str, tuple[str, str]] = {}
    for key, name in written:
        found = directory.type_of(name)
        canonical = found.name.lower() if found is not None else name.lower()
        if canonical in first and first[canonical][1].lower() != name.lower():
            other_key, other = first[canonical]
            problems.append(
                f"{mapping_origin(schema, key)}: {name!r} and {other!r} name one attribute "
                f"type, also written by {other_key}"
            )
        first.setdefault(canonical, (key, name))
    naming = entries.naming_attribute
    for key, name in written:
        if directory.same_type(name, naming) and not directory.same_type(
            entries.naming_field, name
        ):
            where = mapping_origin(schema, f"{spec.kind.value}.rdn")
            problems.append(f"{where}: {naming!r} names the entry, but {key} writes it too")
    return problems
