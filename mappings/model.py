"""The typed mapping: one ResourceMapping per resource type, bundled with its BackendSchema."""

from __future__ import annotations

from collections.abc import Mapping as ReadOnlyDict
from dataclasses import dataclass
from typing import Any

from scim2_models import Resource, Returned
from scim2_models.path import FilterNode

from connectors.base import BackendSchema, Condition, Field, Kind, ObjectSpec, Sort

from .announce import AnnouncedAttribute, announced
from .conditions import ConditionTranslator
from .errors import TranslationError
from .rules import Rule, RuleSet
from .sort import sort_by
from .templates import Template
from .translate import changes, cleared, rederived, to_backend, to_scim


@dataclass(frozen=True, slots=True, eq=False)
class MappedField(Field):
    """A field as a rule writes it, for the start-up check against the backend.

    The connectors read these attributes when present (a hand-built Field has none), to
    name the mapping key in a message and to compare what is written with the column
    or attribute type.
    """

    key: str = ""
    """The mapping key of the rule (`users.attributes.title`)."""
    writes: str | None = None
    """The SCIM type (a ValueKind) of the values written as the client sends them; None
    when only `stored` values are written (a map) or the connector converts them (a
    reference)."""
    stored: tuple[Any, ...] = ()
    """Fixed values the rule writes: a map's values, a constant, the `empty` value."""
    longest: str | None = None
    """The longest text the rule writes, when a `format` bounds it (a date)."""
    secret: bool = False
    """The attribute is `returned: never` (the password, RFC 7643 §7): a credential,
    written as the client sends it, which a connector that hashes nothing warns of."""

    # Equal to the Field it describes: what the check reads is no part of the field.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Field):
            return NotImplemented
        return (self.name, self.reference, self.multi_valued) == (
            other.name,
            other.reference,
            other.multi_valued,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.reference, self.multi_valued))


@dataclass(frozen=True, slots=True)
class MappedBackend(BackendSchema):
    """The BackendSchema of a mapping file, which it names for start-up messages."""

    source: str = ""


class ResourceMapping:
    """Translation both ways for one resource type; pure, no I/O."""

    def __init__(
        self, kind: Kind, spec: ObjectSpec, model: type[Resource[Any]], rules: tuple[Rule, ...]
    ) -> None:
        self.kind = kind
        self.spec = spec
        self.model = model
        self.rules = RuleSet(rules)
        self._readable = RuleSet(tuple(rule for rule in rules if returned(model, rule)))
        """The rules of attributes a response may hold: a `returned: never` attribute
        (RFC 7643 §7: the User's password) is written, never read back, filtered or
        sorted on (a filter on it would tell a client the password, one guess at a
        time)."""
        self._unreturned = RuleSet(tuple(rule for rule in rules if not returned(model, rule)))

    def to_backend(
        self,
        resource: dict[str, Any],
        *,
        current: ReadOnlyDict[str, Any] | None = None,
        previous: ReadOnlyDict[str, Any] | None = None,
        defaults: bool = True,
    ) -> dict[str, Any]:
        """Every stored field's value for a SCIM resource (absent attributes clear fields).

        A rule's default applies on create (no `current`), and on replace only when the
        current record holds no value, which it otherwise keeps (RFC 7644 §3.5.1: an
        omitted attribute may be taken as not asserted). A templated default is the
        exception when the current value is what the template made of `previous` (the
        record as SCIM before the replace): derived, never set by a client, it is derived
        again from the new values, so a PUT that renames a user does not leave the old
        name in its displayName. `defaults=False` leaves defaults out entirely: a PATCH
        that removes an attribute means to clear it.
        """
        return to_backend(self.rules, resource, current, previous=previous, defaults=defaults)

    def rederived(
        self,
        before_values: ReadOnlyDict[str, Any],
        before: ReadOnlyDict[str, Any],
        after: ReadOnlyDict[str, Any],
        named: ReadOnlyDict[str, bool],
    ) -> dict[str, Any]:
        """The templated defaults a PATCH derives again: see translate.rederived."""
        return rederived(self.rules, before_values, before, after, named)

    def cleared_unreturned(self, named: ReadOnlyDict[str, bool]) -> dict[str, Any]:
        """The fields of `returned: never` attributes (the password) that the operations
        `named` clear. Such an attribute is never read back, so the PATCHed resource
        cannot show its removal: a `remove password` would otherwise change nothing
        while answered 200, and the old credential would stay valid."""
        return cleared(self._unreturned, named)

    def to_scim(self, values: ReadOnlyDict[str, Any]) -> dict[str, Any]:
        """The SCIM attributes (no id, meta, schemas, members, groups) of stored values."""
        return to_scim(self._readable, values)

    def changes(
        self, before: ReadOnlyDict[str, Any], after: ReadOnlyDict[str, Any]
    ) -> dict[str, Any]:
        """The stored fields whose values differ between two states; None clears one."""
        return changes(self.rules, before, after)

    def condition(self, node: FilterNode, *, undeclared_is_false: bool = False) -> Condition:
        """A SCIM filter as a backend condition; UntranslatableFilter when it cannot be.

        `undeclared_is_false` serves a search across resource types (RFC 7644 §3.4.2.1):
        a term on an attribute this type does not declare is false rather than an error.
        An attribute the type declares but the mapping does not store is always an error.
        """
        translator = ConditionTranslator(
            self.model, self.spec, self._readable, node, undeclared_is_false=undeclared_is_false
        )
        return translator.translate()

    def sort(self, attribute_path: str, *, descending: bool) -> Sort:
        """The backend ordering for `sortBy`; TranslationError when there is none."""
        return sort_by(self.model, self.spec, self._readable, attribute_path, descending)

    def maps(self, attribute: str) -> bool:
        """Whether the mapping stores a top-level attribute of the core schema (`active`)."""
        return bool(self.rules.for_attribute(str(self.model.__schema__), attribute))

    def stores(self, attribute: str, value: Any) -> bool:
        """Whether a client's value of a top-level core attribute can be written: a map
        without it (`active` with no value for false) refuses it at every write, which a
        deprovisioning policy must know at start rather than at each DELETE."""
        rules = self.rules.for_attribute(str(self.model.__schema__), attribute)
        if not rules or any(rule.read_only or rule.field is None for rule in rules):
            return False
        try:
            for rule in rules:
                rule.encode(value)
        except TranslationError:
            return False
        return True

    def attribute_of(self, field: str) -> str | None:
        """The SCIM path a backend field holds, to name it in a client message."""
        managed = {
            self.spec.key: "id",
            self.spec.created: "meta.created",
            self.spec.modified: "meta.lastModified",
            self.spec.version: "meta.version",
        }
        if field in managed:
            return managed[field]
        return next((rule.scim_path for rule in self.rules.rules if rule.field == field), None)

    def made_from(self, field: str) -> str | None:
        """How a backend field's value is made from others, when it is (`unless sent, it
        is made as {name.givenName} {name.familyName}`), for a client message about a
        value the backend refused: the client may have sent neither attribute named."""
        for rule in self.rules.rules:
            if rule.field == field:
                if rule.template is not None:  # read-only: always made
                    return f"it is made as {rule.template.text}"
                if isinstance(rule.default, Template):
                    return f"unless sent, it is made as {rule.default.text}"
                return None
        return None

    def announced(self) -> dict[str, dict[str, AnnouncedAttribute]]:
        """Schema URN -> top-level attribute -> what discovery may announce."""
        return announced(self.rules)


def returned(model: type[Resource[Any]], rule: Rule) -> bool:
    """Whether the attribute a rule maps may appear in a response (RFC 7643 §7)."""
    if rule.target.extension:
        return True  # declared extension attributes are all `returned: default`
    field = next(
        (
            name
            for name, info in model.model_fields.items()
            if (info.serialization_alias or name).lower() == rule.target.attr.lower()
        ),
        None,
    )
    return field is None or model.get_field_annotation(field, Returned) is not Returned.never


@dataclass(frozen=True)
class Mapping:
    """A loaded mapping file."""

    source: str
    """The file it was loaded from, for messages."""
    backend: BackendSchema
    users: ResourceMapping
    groups: ResourceMapping | None
    slips: tuple[str, ...] = ()
    """What the file says that the service can run with but that is most likely a
    mistake (a slot of a type RFC 7643 does not list), one line each as problems are:
    announced at start beside the configuration's slips, never silently kept."""

    def for_kind(self, kind: Kind) -> ResourceMapping:
        """The mapping of a resource type; LookupError when the file maps no groups."""
        if kind is Kind.USERS:
            return self.users
        if self.groups is None:
            raise LookupError(f"{self.source} maps no groups")
        return self.groups
