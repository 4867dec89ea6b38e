"""Reading a mapping file: TOML into typed rules, with every problem collected.

Each problem is one line, `<file>: <key path>: <what is wrong>`, and all of them are
reported at once so an operator fixes a file in one pass.
"""

from __future__ import annotations

import codecs
import itertools
import pathlib
import re
import tomllib
from dataclasses import replace
from datetime import datetime
from typing import Any, Union

from scim2_models import EnterpriseUser, Group, Resource

from connectors.base import (
    ENABLED_BY_LOCATION,
    DirectoryObject,
    Field,
    Kind,
    MembershipSpec,
    ObjectSpec,
)
from connectors.spelling import did_you_mean

from .errors import MappingError, TranslationError
from .extensions import DeclaredExtension, declared_extensions
from .model import MappedBackend, MappedField, Mapping, ResourceMapping, returned
from .paths import PathProblem, Slot, Target, ValueKind, resolve_target
from .rules import Rule, map_key
from .suggest import unknown_key
from .templates import Template, TemplateProblem, is_template
from .user import User

PRESETS = pathlib.Path(__file__).parent

RULE_KEYS = (
    "field",
    "default",
    "map",
    "case",
    "format",
    "split",
    "first",
    "reference",
    "unique",
    "display",
    "template",
    "constant",
    "absent",
    "bit",
    "bit_set",
    "base",
    "location",
    "empty",
)
_OBJECT_KEYS = (
    "object",
    "key",
    "created",
    "modified",
    "version",
    "attributes",
    "constants",
    "classes",
    "rdn",
    "disabled_object",
)
_MEMBER_KEYS = ("object", "group", "member", "field", "member_value", "placeholder", "member_of")
_DIRECTORY_MEMBER_KEYS = ("member_value", "placeholder", "member_of")
_RDN = re.compile(r"\s*([A-Za-z][A-Za-z0-9-]*)\s*=\s*\{([^{}]+)\}\s*")
_SCALAR = (str, bool, int, float)
_CORE_USER = str(User.__schema__).lower()
_REFERENCES = {
    f"{EnterpriseUser.__schema__}:manager.value".lower(): Kind.USERS,
}
"""The attributes whose value is another resource's id, and the type they refer to: the
enterprise `manager` (RFC 7643 §4.3). The core User's `groups` and the Group's `members`
are the bridge's own, and a declared extension attribute cannot be a reference."""
_SLOT_TYPES = {
    "emails": ("work", "home", "other"),
    "phonenumbers": ("work", "home", "mobile", "fax", "pager", "other"),
    "ims": ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
    "photos": ("photo", "thumbnail"),
    "addresses": ("work", "home", "other"),
}
"""The canonical `type` values RFC 7643 §4.1.2 lists for the User's multi-valued
attributes (addresses: §2.4 and §4.1.2); entitlements, roles and x509Certificates list none."""
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def resource_models(extensions: list[DeclaredExtension]) -> dict[Kind, type[Resource[Any]]]:
    """User (mappings.user's) with the enterprise extension and the declared ones; Group as
    RFC 7643 has it."""
    declared = tuple(extension.model for extension in extensions)
    users: Any = User[Union[(EnterpriseUser, *declared)]]  # type: ignore[valid-type]
    return {Kind.USERS: users, Kind.GROUPS: Group}


def preset_names() -> list[str]:
    """The presets shipped in the package, by name (`sql-default`)."""
    return sorted(path.stem for path in PRESETS.glob("*.toml"))


def _scim_path(pieces: list[str]) -> str:
    """Nested TOML keys as one SCIM path: a URN is followed by `:`, anything else by `.`."""
    text = pieces[0]
    for previous, piece in itertools.pairwise(pieces):
        text += (":" if previous.lower().startswith("urn:") else ".") + piece
    return text


def _toml_key(piece: str) -> str:
    """One key as TOML writes it: bare when it can be, else quoted."""
    if _BARE_KEY.fullmatch(piece):
        return piece
    if '"' in piece and "'" not in piece:
        return f"'{piece}'"
    return '"' + piece.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _valid_strftime(fmt: str) -> bool:
    """Whether a format writes a date that it can read back (strptime rejects bad codes)."""
    if "%" not in fmt:
        return False
    try:
        sample = datetime(2001, 2, 3, 4, 5, 6).strftime(fmt)
        datetime.strptime(sample, fmt)
    except ValueError:
        return False
    return True


class _Loader:
    def __init__(self, label: str) -> None:
        self.label = label
        self.problems: list[str] = []
        self.has_groups = False
        self.disabled_object: str | None = None
        self.models = resource_models([])
        self.declared: dict[str, DeclaredExtension] = {}
        self.slips: list[str] = []

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{self.label}: {key}: {text}")

    def slip(self, key: str, text: str) -> None:
        """What loads but is most likely a mistake: announced at start, never refused."""
        self.slips.append(f"{self.label}: {key}: {text}")

    def typed(
        self, table: dict[str, Any], name: str, key: str, kind: type | tuple[type, ...], what: str
    ) -> Any:
        """table[name] when present and of the expected TOML type, else None (and a problem)."""
        value = table.get(name)
        if value is None:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python, not in TOML.
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            self.problem(f"{key}.{name}", f"must be {what}")
            return None
        return value

    # --- the file ---------------------------------------------------------------------

    def load(self, data: dict[str, Any]) -> Mapping | None:
        for name in data:
            if name not in ("users", "groups", "extensions"):
                self.problem(
                    name,
                    "unknown table (expected users, groups or extensions)"
                    + did_you_mean(name, ("users", "groups", "extensions")),
                )
        extensions = (
            declared_extensions(data["extensions"], self.problem) if "extensions" in data else []
        )
        self.models = resource_models(extensions)
        self.declared = {extension.urn.lower(): extension for extension in extensions}
        self.has_groups = isinstance(data.get("groups"), dict)
        users_table = data.get("users")
        if users_table is None:
            self.problem("users", "missing table")
        users = self.resource(Kind.USERS, users_table) if users_table is not None else None
        groups = memberships = None
        if "groups" in data:
            groups = self.resource(Kind.GROUPS, data["groups"])
            if isinstance(data["groups"], dict):
                memberships = self.members(data["groups"].get("members"))
        if users is not None and groups is not None:
            self.check_apart(users.spec, groups.spec, memberships)
        if users is not None:
            self.check_declared_used(users)
        if self.problems or users is None:
            return None
        return Mapping(
            source=self.label,
            backend=MappedBackend(
                users=users.spec,
                groups=groups.spec if groups else None,
                memberships=memberships,
                source=self.label,
            ),
            users=users,
            groups=groups,
            slips=tuple(self.slips),
        )

    def check_declared_used(self, users: ResourceMapping) -> None:
        """An extension declared but none of whose attributes is mapped: /Schemas and
        /ResourceTypes announce it, and whatever a client sends in it is dropped (most
        likely its attributes sit under a misspelt URN, or were left out)."""
        mapped = {rule.target.schema.lower() for rule in users.rules.rules}
        for urn, extension in self.declared.items():
            if urn not in mapped:
                self.slip(
                    f'extensions."{extension.urn}"',
                    "declared, but no attribute of it is mapped under [users.attributes]: "
                    "it is announced to clients, and what they send in it is dropped",
                )

    def resource(self, kind: Kind, table: Any) -> ResourceMapping | None:
        name = kind.value
        if not isinstance(table, dict):
            self.problem(name, "must be a table")
            return None
        valid = _OBJECT_KEYS + (("members",) if kind is Kind.GROUPS else ())
        for key in table:
            if key not in valid:
                self.problem(f"{name}.{key}", unknown_key(key, valid))
        found = {
            key: self.typed(table, key, name, str, "a string")
            for key in ("object", "key", "created", "modified", "version")
        }
        for key in ("object", "key"):
            if key not in table:
                self.problem(f"{name}.{key}", "missing")
        roles = ("key", "created", "modified", "version")
        for index, role in enumerate(roles):
            for other in roles[index + 1 :]:
                same = found[role] and (found[other] or "").lower() == found[role].lower()
                # One column, two meanings: every write would make one of them wrong. A
                # directory's modifyTimestamp may be the version too (389 DS has no CSN).
                if same and (role, other) != ("modified", "version"):
                    self.problem(
                        f"{name}.{other}", f"names the column {role} names: give each its own"
                    )
        constants = self.typed(table, "constants", name, dict, "a table") or {}
        for field in constants:
            self.typed(
                constants, field, f"{name}.constants", _SCALAR, "a string, number or boolean"
            )
        attributes = self.typed(table, "attributes", name, dict, "a table")
        if attributes is None and "attributes" not in table:
            self.problem(f"{name}.attributes", "missing")
        self.disabled_object = self.typed(table, "disabled_object", name, str, "a string")
        rules: list[Rule] = []
        self.walk(self.models[kind], f"{name}.attributes", attributes or {}, [], rules)
        self.check_together(rules, found)
        self.check_templates(rules)
        self.check_slot_types(rules)
        if kind is Kind.USERS and attributes is not None:
            self.check_user_name(name, attributes, rules)
        self.check_constants(name, constants, rules, found)
        directory = self.directory(name, table, rules, constants)
        if found["object"] is None or found["key"] is None:
            return None
        spec = ObjectSpec(
            kind=kind,
            object=found["object"],
            key=found["key"],
            fields=tuple(_fields(rules, self.models[kind])),
            unique=tuple(rule.field for rule in rules if rule.unique and rule.field),
            display=next((rule.field for rule in rules if rule.display), None),
            created=found["created"],
            modified=found["modified"],
            version=found["version"],
            constants=dict(constants),
            directory=directory,
        )
        return ResourceMapping(kind, spec, self.models[kind], tuple(rules))

    def directory(
        self, name: str, table: dict[str, Any], rules: list[Rule], constants: dict[str, Any]
    ) -> DirectoryObject | None:
        """The LDAP keys of an object table: classes, rdn and disabled_object go together."""
        if not any(key in table for key in ("classes", "rdn", "disabled_object")):
            return None
        classes = self.typed(table, "classes", name, list, "a list of object class names")
        if classes is not None and (
            not classes or not all(isinstance(each, str) and each for each in classes)
        ):
            self.problem(f"{name}.classes", "must be a list of object class names")
            classes = None
        rdn = self.typed(table, "rdn", name, str, "a string")
        for key in ("classes", "rdn"):
            if key not in table:
                self.problem(f"{name}.{key}", "missing (a directory mapping names both)")
        if rdn is None or classes is None:
            return None
        match = _RDN.fullmatch(rdn)
        if match is None:
            self.problem(
                f"{name}.rdn",
                f"must be ATTRIBUTE={{scim.path}}, e.g. uid={{userName}}, not {rdn!r}",
            )
            return None
        attribute, path = match.groups()
        rule = next(
            (r for r in rules if r.scim_path.lower() == path.strip().lower() and r.field), None
        )
        if rule is None or rule.field is None or rule.read_only or rule.several:
            self.problem(
                f"{name}.rdn", f"'{path}' must be a single-valued attribute mapped to a field"
            )
            return None
        # The entry's name holds the rdn's value: another writer of the attribute would
        # change it behind the name (LDAP attribute names are case-insensitive).
        other = next(
            (
                each.key
                for each in rules
                if each is not rule and (each.field or "").lower() == attribute.lower()
            ),
            None,
        )
        if other is None and attribute.lower() in (field.lower() for field in constants):
            other = f"{name}.constants"
        if other is not None and attribute.lower() != rule.field.lower():
            self.problem(
                f"{name}.rdn",
                f"{attribute!r} names the entry after '{path}', but {other} writes it too",
            )
            return None
        return DirectoryObject(
            classes=tuple(classes),
            naming_attribute=attribute,
            naming_field=rule.field,
            disabled_object=self.disabled_object,
        )

    def members(self, table: Any) -> MembershipSpec | None:
        key = "groups.members"
        if table is None:
            self.problem(
                key,
                "missing (object, group and member name a membership table; "
                "field names a member attribute of the group)",
            )
            return None
        if not isinstance(table, dict):
            self.problem(key, "must be a table")
            return None
        for name in table:
            if name not in _MEMBER_KEYS:
                self.problem(f"{key}.{name}", unknown_key(name, _MEMBER_KEYS))
        values = {name: self.typed(table, name, key, str, "a string") for name in _MEMBER_KEYS}
        for name, value in values.items():
            if value == "":
                self.problem(f"{key}.{name}", "must not be empty")
                values[name] = None
        if "field" in table:
            if any(name in table for name in ("object", "group", "member")):
                self.problem(key, "give either object, group and member, or field, not both")
            return MembershipSpec(
                field=values["field"],
                member_value=values["member_value"],
                placeholder=values["placeholder"],
                member_of=values["member_of"],
            )
        for name in _DIRECTORY_MEMBER_KEYS:
            if name in table:
                self.problem(f"{key}.{name}", "applies only with field (a directory's groups)")
        for name in ("object", "group", "member"):
            if name not in table:
                self.problem(f"{key}.{name}", "missing")
        group, member = values["group"], values["member"]
        if group and member and group.lower() == member.lower():
            self.problem(
                f"{key}.member",
                f"{member!r} is also the group column: a membership row needs two columns",
            )
        return MembershipSpec(
            object=values["object"], group=values["group"], member=values["member"]
        )

    # --- attributes -------------------------------------------------------------------

    def walk(
        self,
        model: type[Resource[Any]],
        prefix: str,
        table: dict[str, Any],
        pieces: list[str],
        rules: list[Rule],
    ) -> None:
        """Nested tables are path prefixes, unless they hold a rule key."""
        for name, value in table.items():
            here = [*pieces, name]
            key = f"{prefix}.{'.'.join(here)}"
            if isinstance(value, str):
                rule = self.rule(model, key, here, {"field": value})
            elif isinstance(value, dict) and (
                any(name in value for name in RULE_KEYS) or _names_leaf(model, here)
            ):
                # A table under a simple attribute is a rule table, even with a typo.
                rule = self.rule(model, key, here, value)
            elif isinstance(value, dict) and value:
                self.walk(model, prefix, value, here, rules)
                continue
            else:
                self.problem(key, "must be a field name or a rule table")
                continue
            if rule is not None:
                rules.append(replace(rule, spelling=f"{prefix}.{'.'.join(map(_toml_key, here))}"))

    def rule(
        self, model: type[Resource[Any]], key: str, pieces: list[str], table: dict[str, Any]
    ) -> Rule | None:
        before = len(self.problems)
        for name in table:
            if name not in RULE_KEYS:
                self.problem(f"{key}.{name}", unknown_key(name, RULE_KEYS))
        scim_path = _scim_path(pieces)
        target: Target | None = None
        try:
            target = resolve_target(model, scim_path)
        except PathProblem as exc:
            self.problem(key, str(exc))
        field = self.typed(table, "field", key, str, "a string")
        if field == "":
            self.problem(key, "the field name must not be empty")
        unique = self.typed(table, "unique", key, bool, "true or false")
        display = self.typed(table, "display", key, bool, "true or false")
        constant = self.typed(table, "constant", key, _SCALAR, "a string, number or boolean")
        template = self.template(model, table, "template", key)
        default = self.default(model, table, key, target)
        value_map = self.value_map(table, key, target)
        case = self.typed(table, "case", key, str, "a string")
        if case is not None and case not in ("lower", "upper"):
            self.problem(f"{key}.case", f'must be "lower" or "upper", not {case!r}')
        date_format = self.typed(table, "format", key, str, "a string")
        if date_format is not None:
            if not _valid_strftime(date_format):
                self.problem(f"{key}.format", f"{date_format!r} is not a valid strftime format")
            elif target and not self.holds_dates(target):
                self.problem(
                    f"{key}.format",
                    f"'{scim_path}' holds no date: format applies to a dateTime attribute, "
                    "or to a string attribute of an extension this file declares",
                )
        split = self.typed(table, "split", key, str, "a string")
        if split == "":
            self.problem(f"{key}.split", "must not be empty")
        elif split is not None and target is not None and not target.multi_valued:
            self.problem(f"{key}.split", f"'{scim_path}' is single-valued")
        elif split is not None and target is not None and target.slot is not None:
            self.problem(f"{key}.split", f"'{scim_path}' selects a single entry")
        first = self.first_type(table, key, target, split)
        reference = self.reference(table, key)
        if reference is not None and target is not None:
            self.check_reference(key, target, reference)
        elif "reference" not in table and target and target.urn.lower() in _REFERENCES:
            refers_to = _REFERENCES[target.urn.lower()]
            # Else the id would be stored as plain text: never checked to name a user (a
            # manager who does not exist accepted), a directory's DN attribute refusing
            # it, and the manager's deletion leaving it behind.
            self.problem(
                key,
                f"'{target.urn}' holds the id of one of the {refers_to.value} (RFC 7643 "
                f'§4.3): give reference = "{refers_to.value}", which stores that record\'s '
                "key (a row key, a DN) and checks that it names one",
            )
        strategy = self.account_state(table, key, target)
        empty = self.typed(table, "empty", key, str, "a string")
        if empty == "":
            self.problem(f"{key}.empty", "must not be empty: it stands for no value")
        if empty:
            strategy["empty"] = empty
        if "location" in table:
            if "field" in table:
                self.problem(f"{key}.location", "replaces field: give one of them")
            field = ENABLED_BY_LOCATION
        needs = ("field", "template", "constant", "location")
        if not any(name in table for name in needs):
            self.problem(key, "needs a field, a template or a constant")
        if "template" in table and "constant" in table:
            self.problem(key, "template and constant exclude each other")
        for computed in ("template", "constant"):
            if computed in table and "default" in table:
                # A computed value is never left out by a client: the default would
                # never apply, and the file would read as if it did.
                self.problem(f"{key}.default", f"never applies: {computed} computes the value")
        if target is not None and _is_user_name(target):
            unique = self.user_name_unique(key, table, unique)
        for flag, given in (("unique", unique), ("display", display)):
            if given and "field" not in table:
                self.problem(f"{key}.{flag}", "needs a field")
        self.default_storable(key, default, value_map, strategy.get("absent"))
        if len(self.problems) > before or target is None:
            return None
        rule = Rule(
            key=key,
            scim_path=scim_path,
            target=target,
            field=field,
            default=default,
            value_map=value_map,
            case=case,
            date_format=date_format,
            split=split,
            first=first,
            reference=reference,
            unique=bool(unique),
            display=bool(display),
            template=template,
            constant=constant,
            canonical=self.canonical(target),
            **strategy,
        )
        return rule if self.fixed_values_allowed(rule) else None

    def account_state(
        self, table: dict[str, Any], key: str, target: Target | None
    ) -> dict[str, Any]:
        """The keys of the boolean strategies: absent, bit (bit_set, base) and location."""
        found: dict[str, Any] = {}
        given = [name for name in ("absent", "bit", "location") if name in table]
        if len(given) > 1:
            self.problem(key, f"{' and '.join(given)} exclude each other")
        boolean = target is not None and target.kind is ValueKind.BOOLEAN
        for name in ("absent", "bit", "location", "bit_set", "base"):
            if name in table and target is not None and not boolean:
                self.problem(f"{key}.{name}", f"applies only to a boolean, not '{target.urn}'")
        if "absent" in table and (boolean or target is None):
            absent = self.typed(table, "absent", key, _SCALAR, "a string, number or boolean")
            if boolean and not isinstance(absent, bool):
                self.problem(f"{key}.absent", "must be true or false for a boolean")
            elif "map" not in table and boolean:
                self.problem(f"{key}.absent", "needs a map giving the stored value it is not")
            found["absent"] = absent
        if "bit" in table:
            bit = self.typed(table, "bit", key, int, "an integer")
            if bit is not None and bit <= 0:
                self.problem(f"{key}.bit", "must be a positive mask such as 2")
            if "map" in table:
                self.problem(f"{key}.bit", "excludes map")
            found["bit"] = bit
            found["bit_set"] = self.typed(table, "bit_set", key, bool, "true or false")
            found["base"] = self.typed(table, "base", key, int, "an integer") or 0
            if found["bit_set"] is None:
                found["bit_set"] = True
        else:
            for name in ("bit_set", "base"):
                if name in table:
                    self.problem(f"{key}.{name}", "applies only with bit")
        if "location" in table:
            if table["location"] is not True:
                self.problem(f"{key}.location", "must be true")
            if self.disabled_object is None:
                self.problem(
                    f"{key}.location",
                    "needs disabled_object in the table: where disabled entries go",
                )
        return found

    def template(
        self, model: type[Resource[Any]], table: dict[str, Any], name: str, key: str
    ) -> Template | None:
        text = self.typed(table, name, key, str, "a string")
        if text is None:
            return None
        try:
            return Template.parse(model, text)
        except (PathProblem, TemplateProblem) as exc:
            self.problem(f"{key}.{name}", str(exc))
            return None

    def default(
        self, model: type[Resource[Any]], table: dict[str, Any], key: str, target: Target | None
    ) -> Any:
        value = self.typed(table, "default", key, _SCALAR, "a string, number or boolean")
        if isinstance(value, str) and is_template(value):
            return self.template(model, table, "default", key)
        if value is None or target is None:
            return value
        expected = {ValueKind.BOOLEAN: (bool, "true or false"), ValueKind.STRING: (str, "a string")}
        if target.kind in expected:
            kind, what = expected[target.kind]
            if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
                self.problem(f"{key}.default", f"must be {what} for '{target.urn}'")
                return None
        return value

    def value_map(self, table: dict[str, Any], key: str, target: Target | None) -> Any:
        value_map = self.typed(table, "map", key, dict, "a table")
        if value_map is None:
            return None
        seen: dict[Any, str] = {}
        for scim, stored in value_map.items():
            if (
                self.typed(value_map, scim, f"{key}.map", _SCALAR, "a string, number or boolean")
                is None
            ):
                continue
            if (type(stored), stored) in seen:
                other = seen[(type(stored), stored)]
                self.problem(
                    f"{key}.map",
                    f"backend value {stored!r} is given to both {other!r} and {scim!r}",
                )
            seen[(type(stored), stored)] = scim
            if target and target.kind is ValueKind.BOOLEAN and scim not in ("true", "false"):
                self.problem(f"{key}.map.{scim}", 'a boolean maps only "true" and "false"')
        return value_map

    def default_storable(
        self, key: str, default: Any, value_map: dict[str, Any] | None, absent: Any
    ) -> None:
        """A default goes through `map` like a client's value: one the map cannot store
        would make every create that leaves the attribute out fail, blaming the client."""
        if value_map is None or default is None or isinstance(default, Template):
            return
        if absent is not None and default == absent:
            return  # stored as no value at all
        folded = {each.lower() for each in value_map}
        if map_key(default) not in value_map and map_key(default).lower() not in folded:
            self.problem(
                f"{key}.default",
                f"{default!r} is not a key of map ({', '.join(map(repr, value_map))}), "
                "so it could never be stored",
            )

    def holds_dates(self, target: Target) -> bool:
        """Whether `format` can apply: the README has it convert a date held as text, so
        the SCIM side must be a date. A dateTime is one; so may be a string of an
        extension this file declares (a date as Okta and OneLogin send it, "2026-03-01").
        RFC 7643's own strings (title, nickName...) never are: every write would fail."""
        if target.kind is ValueKind.DATETIME:
            return True
        return target.kind is ValueKind.STRING and target.schema.lower() in self.declared

    def canonical(self, target: Target) -> tuple[str, ...] | None:
        """The allowed values the file declares for a target, if any."""
        extension = self.declared.get(target.schema.lower())
        if extension is None:
            return None
        return extension.canonical.get(target.attr.lower())

    def fixed_values_allowed(self, rule: Rule) -> bool:
        """A constant or literal default outside the allowed values would make every
        create fail, blaming the client."""
        for name, value in (("constant", rule.constant), ("default", rule.default)):
            if value is None or isinstance(value, Template):
                continue
            try:
                rule.allowed(value)
            except TranslationError:
                allowed = ", ".join(map(repr, rule.canonical or ()))
                self.problem(
                    f"{rule.key}.{name}", f"{value!r} is not one of the allowed values ({allowed})"
                )
                return False
        return True

    def reference(self, table: dict[str, Any], key: str) -> Kind | None:
        reference = self.typed(table, "reference", key, str, "a string")
        if reference is None:
            return None
        if reference not in ("users", "groups"):
            self.problem(f"{key}.reference", f'must be "users" or "groups", not {reference!r}')
            return None
        if reference == "groups" and not self.has_groups:
            self.problem(f"{key}.reference", "there is no [groups] table to refer to")
            return None
        return Kind(reference)

    def check_reference(self, key: str, target: Target, reference: Kind) -> None:
        """`reference` stores another record's key in place of the value: only an
        attribute that holds a resource's id can take it, else the key would be served
        as the plain string /Schemas announces."""
        refers_to = _REFERENCES.get(target.urn.lower())
        if refers_to is None:
            self.problem(
                f"{key}.reference",
                f"'{target.urn}' is no reference to a resource (manager.value of the "
                "enterprise extension is, RFC 7643 §4.3)",
            )
        elif refers_to is not reference:
            self.problem(
                f"{key}.reference",
                f"'{target.urn}' refers to {refers_to.value} (RFC 7643 §4.3), "
                f"not {reference.value}",
            )

    def user_name_unique(self, key: str, table: dict[str, Any], unique: bool | None) -> bool:
        """userName is unique whatever the file says (RFC 7643 §4.1.1: "MUST be unique
        across the service provider's entire set of Users"), so the connector refuses a
        second user of one name instead of storing two the client cannot tell apart."""
        if unique is False:
            self.problem(f"{key}.unique", "userName is unique (RFC 7643 §4.1.1): remove it")
        return "field" in table

    def check_user_name(self, name: str, attributes: dict[str, Any], rules: list[Rule]) -> None:
        """RFC 7643 §4.1.1 makes userName required: a mapping that stores none would
        create users without it, answered 201 all the same. A key spelled so that its
        rule was refused already is not reported twice."""
        if any(_is_user_name(rule.target) and rule.field for rule in rules):
            return
        if any(each.lower().rsplit(":", 1)[-1] == "username" for each in attributes):
            if not any(_is_user_name(rule.target) for rule in rules):
                return  # its own rule is refused, with the reason
            self.problem(
                f"{name}.attributes.userName",
                "needs a field: userName is stored, and unique (RFC 7643 §4.1.1)",
            )
            return
        self.problem(
            f"{name}.attributes.userName",
            'missing: RFC 7643 §4.1.1 makes userName required (userName = "login")',
        )

    def check_templates(self, rules: list[Rule]) -> None:
        """A template is rendered from the attributes the record stores (to_scim places
        the stored ones first), and a templated default is derived again from them: a
        placeholder naming itself, or an attribute no rule stores, never has a value."""
        stored = {_identity(rule.target) for rule in rules if rule.field and rule.constant is None}
        for rule in rules:
            for name, template in (("template", rule.template), ("default", rule.default)):
                if not isinstance(template, Template):
                    continue
                for target in template.targets:
                    here = _identity(target)
                    if here == _identity(rule.target):
                        self.problem(
                            f"{rule.key}.{name}",
                            f"'{template.text}' names the attribute it computes: it never "
                            "has a value",
                        )
                    elif here not in stored:
                        self.problem(
                            f"{rule.key}.{name}",
                            f"'{template.text}' names '{_placeholder(target)}', which the "
                            "mapping does not store: map it to a field",
                        )

    def first_type(
        self, table: dict[str, Any], key: str, target: Target | None, split: str | None
    ) -> str | None:
        """`first`: the type the first of the joined values stands for (Rule.first). Only
        beside `split` (a directory's values, unlike a field's joined text, keep no
        order), for entries that have a type (emails, not a list of plain values)."""
        first = self.typed(table, "first", key, str, "a string")
        if first is None:
            return None
        if not first.strip():
            self.problem(f"{key}.first", "must name a type (work)")
        elif split is None:
            self.problem(f"{key}.first", "needs split: only joined values keep their order")
        elif target is not None and target.sub_attr is None:
            self.problem(f"{key}.first", f"'{target.attr}' holds plain values, without types")
        elif target is not None and not target.extension:
            listed = _SLOT_TYPES.get(target.attr.lower())
            if listed is not None and first.lower() not in listed:
                self.slip(
                    f"{key}.first",
                    f'type "{first}" is not one RFC 7643 §4.1.2 lists for {target.attr} '
                    f"({', '.join(listed)})",
                )
        return str(first)

    def check_slot_types(self, rules: list[Rule]) -> None:
        """A slot of a type RFC 7643 §4.1.2 does not list (`"wrok"`) is most likely a
        typo: the entries clients send, of the listed types, would find no slot and be
        dropped. Other types are allowed ("the value MAY be any string"), so it is a
        slip announced at start, not a refusal."""
        for rule in rules:
            slot, target = rule.target.slot, rule.target
            if slot is None or target.extension:
                continue
            listed = _SLOT_TYPES.get(target.attr.lower())
            if listed is not None and slot.type.lower() not in listed:
                self.slip(
                    rule.key,
                    f'type "{slot.type}" is not one RFC 7643 §4.1.2 lists for '
                    f"{target.attr} ({', '.join(listed)}): entries of those types are "
                    "not stored in it",
                )

    def check_together(self, rules: list[Rule], found: dict[str, str | None]) -> None:
        """Problems between rules: fields written twice, attributes mapped twice.

        Field names compare case-insensitively whatever the backend: LDAP attribute
        names, MySQL's and SQLite's column names are, and two names that differ only in
        case are a mistake on PostgreSQL too.
        """
        by_field: dict[str, Rule] = {}
        by_target: dict[tuple[str, Any], Rule] = {}
        slots: dict[tuple[str, str, str], Rule] = {}
        whole: dict[tuple[str, str], Rule] = {}
        display: Rule | None = None
        for rule in rules:
            target = rule.target
            if rule.field is not None:
                role = _connector_role(found, rule.field)
                if role is not None:
                    self.problem(rule.key, _written_by_the_connector(rule.key, rule.field, role))
                elif rule.field.lower() in by_field:
                    self.problem(
                        rule.key,
                        f"field {rule.field!r} is also written by "
                        f"{by_field[rule.field.lower()].key}",
                    )
                by_field.setdefault(rule.field.lower(), rule)
            identity = (target.urn.lower(), _folded(target.slot))
            if identity in by_target:
                self.mapped_twice(rule, by_target[identity])
            elif target.slot is not None:
                self.check_slot_spelling(rule, slots)
            by_target.setdefault(identity, rule)
            attribute = (target.schema.lower(), target.attr.lower())
            first = whole.setdefault(attribute, rule)
            if target.multi_valued and (first.target.slot is None) != (target.slot is None):
                self.problem(
                    rule.key,
                    f"'{target.attr}' is mapped both as a whole "
                    f"({(first if first.target.slot is None else rule).key}) and "
                    "through entries selected by type",
                )
            if rule.display:
                if display is not None:
                    self.problem(f"{rule.key}.display", f"already set by {display.key}")
                display = display or rule

    def mapped_twice(self, rule: Rule, first: Rule) -> None:
        """Name both keys of one attribute mapped twice, as the file spells them when the
        dotted key paths read alike (`"name.givenName"` and `[...name] givenName`)."""
        here, there = (
            (rule.spelling, first.spelling) if rule.key == first.key else (rule.key, first.key)
        )
        why = ""
        if rule.target.slot and first.target.slot and rule.target.slot != first.target.slot:
            why = " (entry types compare case-insensitively)"
        self.problem(here, f"'{rule.scim_path}' is already mapped by {there}{why}")

    def check_slot_spelling(self, rule: Rule, slots: dict[tuple[str, str, str], Rule]) -> None:
        """One entry type spelled two ways would make two entries of one: RFC 7643 §2.4
        compares the `type` of an entry case-insensitively, and translate places an entry
        in the first slot of its type."""
        slot = rule.target.slot
        if slot is None:
            return
        target = rule.target
        first = slots.setdefault(
            (target.schema.lower(), target.attr.lower(), slot.type.lower()), rule
        )
        spelled = first.target.slot.type if first.target.slot else slot.type
        if spelled != slot.type:
            self.problem(
                rule.key,
                f'type "{slot.type}" is spelled "{spelled}" by {first.key}: entry types '
                "compare case-insensitively, spell them alike",
            )

    def check_apart(
        self, users: ObjectSpec, groups: ObjectSpec, memberships: MembershipSpec | None
    ) -> None:
        """Users and groups must not be read from the same records."""
        user_dir, group_dir = users.directory, groups.directory
        if user_dir is None or group_dir is None:
            if users.object.lower() == groups.object.lower():
                self.problem(
                    "groups.object",
                    f"{groups.object!r} is also the users' table: each needs its own",
                )
            table = memberships.object if memberships is not None else None
            if table is not None and table.lower() in (
                users.object.lower(),
                groups.object.lower(),
            ):
                self.problem(
                    "groups.members.object",
                    f"{table!r} is the users' or the groups' table: memberships need their own",
                )
            return
        # A type's entries are those of its classes under its containers (subtree).
        user_bases = [users.object, *filter(None, [user_dir.disabled_object])]
        group_bases = [groups.object, *filter(None, [group_dir.disabled_object])]
        if not any(_overlap(u, g) for u in user_bases for g in group_bases):
            return
        user_classes = {each.lower() for each in user_dir.classes} - {"top"}
        group_classes = {each.lower() for each in group_dir.classes} - {"top"}
        if user_classes <= group_classes or group_classes <= user_classes:
            self.problem(
                "groups.object",
                f"{groups.object!r} shares entries with the users' {users.object!r} and the "
                "classes do not tell them apart: give each type a class the other lacks, "
                "or its own container",
            )

    def check_constants(
        self,
        name: str,
        constants: dict[str, Any],
        rules: list[Rule],
        found: dict[str, str | None],
    ) -> None:
        """A constant is written on every create: a field an attribute also writes would
        drop the client's value without a word, and the connector's own fields (the key,
        the version, the timestamps) are not the mapping's to set."""
        for field in constants:
            role = _connector_role(found, field)
            writer = next(
                (rule for rule in rules if (rule.field or "").lower() == field.lower()), None
            )
            if role is not None:
                self.problem(
                    f"{name}.constants.{field}",
                    _written_by_the_connector(f"{name}.constants", field, role),
                )
            elif writer is not None:
                self.problem(
                    f"{name}.constants.{field}",
                    f"field {field!r} is also written by {writer.key}: give it one of the two",
                )


def _is_user_name(target: Target) -> bool:
    """Whether a target is the core User's userName (RFC 7643 §4.1.1)."""
    return (
        target.schema.lower() == _CORE_USER
        and target.attr.lower() == "username"
        and target.sub_attr is None
    )


def _identity(target: Target) -> tuple[str, str | None]:
    """A target as a template reads it: by its URN and the type of its slot (read_single
    takes the first entry of that type, primary or not)."""
    return target.urn.lower(), None if target.slot is None else target.slot.type.lower()


def _placeholder(target: Target) -> str:
    """A template's placeholder as a mapping key writes it, for messages."""
    path = target.attr if target.sub_attr is None else f"{target.attr}.{target.sub_attr}"
    if target.slot is not None:
        path = f'{target.attr}[type eq "{target.slot.type}"].{target.sub_attr or "value"}'
    return f"{target.schema}:{path}" if target.extension else path


def _folded(slot: Slot | None) -> Slot | None:
    """A slot as it selects entries: `type eq "Work"` and `type eq "work"` are one."""
    return None if slot is None else Slot(slot.type.lower(), slot.primary)


def _written_by_the_connector(key: str, field: str, role: str) -> str:
    """The problem of a field both a rule (or constant) and the connector write: which
    table key names it, and the two ways out. An HR table's personnel number named as
    `key` (it is not the row's key) read as a fault of employeeNumber's rule."""
    table = key.split(".", 1)[0]
    way_out = (
        f"name the table's own primary key in {table}.key"
        if role == "key"
        else f"name another field in {table}.{role}"
    )
    return (
        f"field {field!r} is the {role} field ({table}.{role}), which the connector writes: "
        f"map this to another field, or {way_out}"
    )


def _connector_role(found: dict[str, str | None], field: str) -> str | None:
    """Which of the fields the connector writes itself `field` is (key, timestamps,
    version), if any."""
    return next(
        (
            role
            for role in ("key", "created", "modified", "version")
            if (found[role] or "").lower() == field.lower()
        ),
        None,
    )


def _fields(rules: list[Rule], model: type[Resource[Any]]) -> list[Field]:
    fields: dict[str, Field] = {}
    for rule in rules:
        if rule.field is not None and rule.field not in fields:
            several = rule.several and rule.split is None
            writes, stored = _written(rule)
            fields[rule.field] = MappedField(
                rule.field,
                reference=rule.reference,
                multi_valued=several,
                key=rule.key,
                writes=writes,
                stored=stored,
                longest=rule.longest_date(),
                secret=not returned(model, rule),
            )
    return list(fields.values())


def _written(rule: Rule) -> tuple[str | None, tuple[Any, ...]]:
    """What a rule writes to its field: the SCIM type of free values, and fixed values."""
    fixed = (rule.empty,) if rule.empty is not None else ()
    if rule.constant is not None:
        return None, (rule.encode(rule.constant),)
    if rule.value_map is not None:
        return None, (*rule.value_map.values(), *fixed)
    if rule.reference is not None or rule.field == ENABLED_BY_LOCATION:
        return None, fixed
    if rule.bit is not None:
        return ValueKind.NUMBER.value, fixed
    if rule.template is not None or rule.date_format is not None or rule.split is not None:
        return ValueKind.STRING.value, fixed
    return rule.target.kind.value, fixed


def _names_leaf(model: type[Resource[Any]], pieces: list[str]) -> bool:
    """Whether nested keys name an attribute without sub-attributes (`title`), under
    which a table can only be a rule table."""
    text = _scim_path(pieces)
    try:
        target = resolve_target(model, text)
    except PathProblem:
        return False
    last = re.split(r"[.:]", text)[-1].lower()
    return (target.sub_attr or target.attr).lower() == last


def _container(dn: str) -> str:
    """A relative DN compared loosely: case and spaces around separators ignored."""
    return ",".join(
        "=".join(part.strip() for part in rdn.split("=", 1)) for rdn in dn.lower().split(",")
    )


def _overlap(first: str, second: str) -> bool:
    """Whether one container is, or lies beneath, the other (searches are subtree)."""
    a, b = _container(first), _container(second)
    return a == b or a.endswith("," + b) or b.endswith("," + a)


def toml_text(raw: bytes) -> str:
    """A TOML file's bytes as text, or ValueError saying what to fix: TOML is UTF-8, and
    a decoder's byte offset means nothing in an editor. The configuration file is read
    with it too, so both files are refused alike."""
    if raw.startswith(codecs.BOM_UTF8):
        # tomllib would say "invalid statement at line 1, column 1", pointing at nothing
        # an editor shows: it is named, not skipped.
        raise ValueError("starts with a byte order mark; save it as UTF-8 without BOM")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        byte = raw[exc.start]
        raise ValueError(
            f"line {line}: not UTF-8 text (byte 0x{byte:02x}); save it as UTF-8"
        ) from None


def _text(raw: bytes, label: str) -> str:
    try:
        return toml_text(raw)
    except ValueError as exc:
        raise MappingError([f"{label}: {exc}"]) from None


def load_mapping(source: str | pathlib.Path) -> Mapping:
    """Load a preset by name (`sql-default`) or a TOML file; MappingError lists all problems."""
    path = PRESETS / f"{source}.toml" if source in preset_names() else pathlib.Path(source)
    label = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MappingError(
            [f"{label}: no such file or preset (presets: {', '.join(preset_names())})"]
        ) from None
    except OSError as exc:
        raise MappingError([f"{label}: cannot be read ({exc})"]) from None
    text = _text(raw, label)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError([f"{label}: invalid TOML: {exc}"]) from None
    loader = _Loader(label)
    mapping = loader.load(data)
    if mapping is None:
        raise MappingError(loader.problems)
    return mapping
