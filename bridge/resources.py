"""The SCIM operations on one resource type, between the protocol and a connector.

No HTTP here: handlers in bridge/app.py parse the request and render the answer. This
module validates payloads with scim2-models under a tolerant policy, translates them with
the mapping, and hands the connector only what changed (RFC 7644 §3.3, §3.4, §3.5).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import ValidationError
from pydantic.alias_generators import to_snake
from scim2_models import (
    Context,
    NoTargetException,
    PatchOp,
    PatchOperation,
    Resource,
    ScimPolicy,
)
from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator

from bridge import patch_targets, quirks
from bridge.config import GroupPolicy, Settings, UserPolicy
from bridge.errors import ScimError
from bridge.membership import (
    lighten_member_removals,
    member_ids,
    restore_member_removals,
    split_member_operations,
)
from bridge.read_only import without_read_only
from bridge.turns import Turns
from connectors.base import (
    Compare,
    Connector,
    ConnectorError,
    InvalidValue,
    Kind,
    MemberChanges,
    Op,
    Or,
    Page,
    PartiallyWritten,
    PreconditionFailed,
    Query,
    Record,
    Unavailable,
    Unsortable,
)
from mappings import Mapping, ResourceMapping
from mappings.names import NAME_ATTRIBUTE, composed
from mappings.paths import get_ci

POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)
"""What the bridge tolerates from clients: unknown attributes are dropped (Okta's `locale`
when unmapped, Entra's ADSCIM schema), a `remove` may carry its selection in `value` (Entra),
and a replace through an unmatched filter creates the entry (Entra's
`emails[type eq "work"].value` on a user with no work email)."""

TARGETS_REQUIRED = POLICY.model_copy(
    update={"unmatched_path_filter": ScimPolicy.UnmatchedPathFilter.forbid}
)
"""POLICY, with a filter that matches no entry refused (400 noTarget, RFC 7644 §3.5.2.3)."""

SLOT_SELECTORS = frozenset({"type", "primary"})
"""Sub-attributes whose `eq` filter describes an entry to create when none matches:
Entra's `emails[type eq "work"].value` on a user without a work email. A filter on
anything else (`emails[value eq "a@x.com"]`) names an existing value; matching none,
the operation has no target."""

MAX_PATCH_OPERATIONS = 1000
"""Operations of one PATCH. Each is validated and applied in turn while the service serves
nothing else (16,000 in a 1 MB body took four seconds); identity providers send a few,
however many members each names. More is 413 (RFC 7644 §3.12), to be split."""

WRITE_ATTEMPTS = 8
"""Reads and writes of one unconditional PATCH, PUT or DELETE, each after another
process's write (another worker, another tool) came between the read and the write."""

RETRY_PAUSE = 0.005
"""Seconds: the n-th attempt waits up to n times this, at random, so that writers in
several processes that collided do not collide again in step."""

_RFC_NAMESPACES = (
    "urn:ietf:params:scim:schemas:core:",
    "urn:ietf:params:scim:schemas:extension:enterprise:",
)
"""Where RFC 7643's own schemas are named (§8.7.1): no other schema is named there."""

_PATH_NAMES = re.compile(
    r"(?P<attribute>[A-Za-z][\w$-]*)(?:\[[^\]]*\])?(?:\.(?P<sub>[A-Za-z][\w$-]*))?"
)
"""The attribute a PATCH path names, and its sub-attribute (RFC 7644 §3.10, §3.5.2)."""


def _attributes_of(model: type[Any]) -> dict[str, frozenset[str]]:
    """A schema's attribute names, each with its sub-attributes' names, lower-cased
    (attribute names are caseless, RFC 7643 §2.1)."""
    found: dict[str, frozenset[str]] = {}
    for name, field in model.model_fields.items():
        if name == "schemas" or name[:1].isupper():  # extensions are fields of the model
            continue
        root = model.get_field_root_type(name)
        subs: frozenset[str] = frozenset()
        if isinstance(root, type) and issubclass(root, pydantic.BaseModel):
            subs = frozenset(
                (sub.serialization_alias or sub_name).lower()
                for sub_name, sub in root.model_fields.items()
            )
        found[(field.serialization_alias or name).lower()] = subs
    return found


@dataclass(frozen=True)
class ReadOptions:
    """What a response will show, so that the connector loads no more than needed.

    `members` is only ever set for groups and `groups` only for users.
    """

    members: bool
    groups: bool


class ResourceService:
    """Create, read, replace, patch, delete and search the resources of one type."""

    def __init__(
        self,
        kind: Kind,
        mapping: ResourceMapping,
        connector: Connector,
        policy: UserPolicy | GroupPolicy | None = None,
    ) -> None:
        self.kind = kind
        self.mapping = mapping
        self.connector = connector
        self.policy = policy or (UserPolicy() if kind is Kind.USERS else GroupPolicy())
        self.maps_active = mapping.maps("active")
        self.on_deactivate = deprovisioning(self.policy, self.maps_active)
        self.model: type[Resource[Any]] = mapping.model
        self.core_schema = str(self.model.__schema__)
        self.extension_schemas = [
            str(extension.__schema__) for extension in self.model.get_extension_models().values()
        ]
        self.known_schemas = {self.core_schema, *self.extension_schemas}
        self._extensions = [urn.lower() for urn in self.extension_schemas]
        self._urn_of = {urn.lower(): urn for urn in self.extension_schemas}
        self._announced = {
            urn.lower(): {name.lower(): item for name, item in attributes.items()}
            for urn, attributes in mapping.announced().items()
        }
        self._attribute_names = {
            urn.lower(): _attributes_of(model)
            for urn, model in [
                (self.core_schema, self.model),
                *self.model.get_extension_models().items(),
            ]
        }
        # Built once: pydantic keeps parameterised classes weakly, and building one again
        # for every request costs more than the rest of a small PATCH.
        self._patch_class: Any = PatchOp.__class_getitem__(self.model)
        self._turns = Turns()
        self.manager_field = next(
            (field.name for field in mapping.spec.fields if field.reference is Kind.USERS), None
        )

    # --- writes -------------------------------------------------------------------

    async def create(self, payload: dict[str, Any], read: ReadOptions) -> Record:
        scim = self._composed_name(self._validated(payload, Context.RESOURCE_CREATION_REQUEST))
        self._refuse_blank_name(scim.get(self._name_attribute))
        if scim.get("active") is False and self.on_deactivate != "disable":
            # Created inactive, the account would be what the policy never lets exist:
            # an account the service refuses to disable, or one it deletes instead.
            raise self._cannot_disable()
        values = self.mapping.to_backend(scim)
        members = member_ids(scim.get("members")) if self.kind is Kind.GROUPS else []
        with self._scim_field_names(writing=True):
            record = await self.connector.create(self.kind, values, members=members)
            if read.groups:
                record.groups = []
        return record

    async def replace(
        self, id: str, payload: dict[str, Any], if_match: set[str] | None, read: ReadOptions
    ) -> Record:
        """PUT (RFC 7644 §3.5.1): the mapped attributes become what the body says."""
        scim = self._validated(payload, Context.RESOURCE_REPLACEMENT_REQUEST)
        self._refuse_blank_name(scim.get(self._name_attribute))

        async def replace(current: Record) -> Record:
            if self._deactivates(current, scim.get("active")):
                return await self._deactivate(current)
            stored = self._as_request(current)
            body = self._composed_name(scim, stored)
            if body.get("active") is None and stored.get("active") is not None:
                # A body without `active` does not assert it (RFC 7644 §3.5.1 lets the
                # service keep the value): a disabled account is not enabled by a PUT
                # from a client that does not manage the account state.
                body = {**body, "active": stored["active"]}
            before = self.mapping.to_backend(stored, current=current.values, previous=stored)
            after = self.mapping.to_backend(body, current=current.values, previous=stored)
            changes = self.mapping.changes(before, after)
            members = None
            if self.kind is Kind.GROUPS:
                members = MemberChanges(replace=frozenset(member_ids(scim.get("members"))))
            return await self.connector.update(
                self.kind,
                id,
                changes,
                members=members,
                if_version=current.version,
                with_members=read.members,
                with_groups=read.groups,
            )

        with self._scim_field_names(writing=True):
            return await self._on_current(id, if_match, replace)

    async def patch(
        self, id: str, payload: dict[str, Any], if_match: set[str] | None, read: ReadOptions
    ) -> Record:
        """PATCH (RFC 7644 §3.5.2).

        Member operations become member changes without reading the group's members;
        every other operation is applied by scim2-models to the current resource, and
        only the fields whose values differ afterwards are written. The read and the
        write are tied by the version, and retried when another writer came between.
        """
        normalized = quirks.normalize_patch(payload, resource_id=id)
        operations_sent = normalized.get("Operations")  # as spelt by any client
        if isinstance(operations_sent, list) and len(operations_sent) > MAX_PATCH_OPERATIONS:
            raise ScimError(
                413,
                f"a PATCH holds at most {MAX_PATCH_OPERATIONS} operations; send the rest in "
                "another",
            )
        normalized, computed = self._resolved_paths(normalized)
        manager_was = quirks.take_manager_conditions(normalized)
        removals: dict[int, Any] = {}
        if self.kind is Kind.GROUPS:
            normalized, removals = lighten_member_removals(normalized)
        if computed and not normalized.get("Operations"):
            # Only values of computed attributes: no operation left for scim2-models,
            # which refuses a PATCH of none; `_check_computed` has them.
            patch = self._patch_class.model_construct(operations=[])
        else:
            patch = self._patch_class.model_validate(
                normalized, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY
            )
        # By operation, not by place: splitting out a group's member operations shifts places.
        conditioned = [((patch.operations or [])[i], was) for i, was in manager_was.items()]
        if self.kind is Kind.GROUPS:
            sent = restore_member_removals(patch.operations or [], removals)
            operations, members = split_member_operations(sent)
        else:
            operations, members = list(patch.operations or []), MemberChanges()
        with self._scim_field_names(writing=True):
            if not operations and not computed and if_match is None:
                # Members alone, unconditionally (an identity provider's PATCH): nothing
                # of the group needs reading first; a missing group is a 404 all the same.
                return await self.connector.update(
                    self.kind,
                    id,
                    {},
                    members=members or None,
                    with_members=read.members,
                    with_groups=read.groups,
                )

            named = patch_targets.named(operations, self.core_schema, self._extensions)

            async def apply(current: Record) -> Record:
                changes: dict[str, Any] = {}
                if operations:
                    resource = self._as_model(current)
                    # Without defaults: a removed attribute is cleared, not re-derived.
                    stored = current.values
                    previous = self._dump(resource)
                    before = self.mapping.to_backend(previous, current=stored, defaults=False)
                    manager = self._manager_of(self._as_request(current)) if conditioned else None
                    for operation in operations:  # in order (RFC 7644 §3.5.2)
                        was = next((w for op, w in conditioned if op is operation), manager)
                        if was != manager:
                            continue  # removes a manager the user no longer has
                        _apply_operation(patch, operation, resource)
                        if conditioned:  # Entra's conditional removal: rare, so dumped
                            manager = self._manager_of(self._dump(resource))
                    self._refuse_blank_name(getattr(resource, to_snake(self._name_attribute)))
                    if self._deactivates(current, getattr(resource, "active", None)):
                        return await self._deactivate(current)
                    patched = self._composed_name(self._dump(resource), previous)
                    after = self.mapping.to_backend(patched, current=stored, defaults=False)
                    after |= self.mapping.rederived(before, previous, patched, named)
                    changes = self.mapping.changes(before, after)
                    # Never read, so `before` cannot hold it: cleared whether or not set.
                    changes |= self.mapping.cleared_unreturned(named)
                self._check_computed(computed, current.values, changes)
                return await self.connector.update(
                    self.kind,
                    id,
                    changes,
                    members=members or None,
                    if_version=current.version,
                    with_members=read.members,
                    with_groups=read.groups,
                )

            return await self._on_current(id, if_match, apply)

    async def delete(self, id: str, if_match: set[str] | None) -> None:
        """DELETE (RFC 7644 §3.6), as the resource type's `on_delete` policy says."""
        with self._scim_field_names():
            conditional = if_match is not None and "*" not in if_match
            if not conditional and self.policy.on_delete == "delete":
                await self.connector.delete(self.kind, id)
                return

            async def deprovision(current: Record) -> Record:
                await self._deprovision(current)
                return current

            await self._on_current(id, if_match, deprovision)

    async def _on_current(
        self, id: str, if_match: set[str] | None, write: Callable[[Record], Awaitable[Record]]
    ) -> Record:
        """`write(current)` on the resource as read now, its If-Match checked first.

        `write` writes on the version it was given. Within this process the writes of a
        resource take turns, so parallel PATCHes read each other's results; when a write
        of another process came between the read and the write, the resource is read and
        `write` made again: a request without If-Match set no condition, and a failed
        precondition there would be the service's race, not the client's (RFC 7644
        §3.14). With If-Match naming versions, the client's condition has failed: 412.
        """
        async with self._turns.taken(id):
            for attempt in range(1, WRITE_ATTEMPTS + 1):
                current = await self.connector.get(self.kind, id)
                self._check_if_match(current, if_match)
                try:
                    return await write(current)
                except PreconditionFailed:
                    if if_match is not None and "*" not in if_match:
                        raise  # the client's version is gone; `*` (it exists) still holds
                await asyncio.sleep(random.uniform(0, RETRY_PAUSE * attempt))  # noqa: S311
        raise Unavailable("the resource kept changing under concurrent writes; retry")

    # --- deprovisioning -------------------------------------------------------------

    async def _deprovision(self, current: Record) -> None:
        """What DELETE does to a record under the resource type's policy."""
        on_delete = self.policy.on_delete
        if on_delete == "delete":
            await self.connector.delete(self.kind, current.id, if_version=current.version)
            return
        if on_delete == "move":
            # Disabled within the move, once the archive is known to take the name: a
            # refused move (409) must leave the account as it was.
            await self.connector.archive(
                self.kind,
                current.id,
                container=str(self.policy.archive),
                if_version=current.version,
                changes=self._disabling(current) if self.maps_active else None,
            )
            return
        await self._disable(current)

    def _manager_of(self, resource: dict[str, Any]) -> str | None:
        """The id of the manager a user (SCIM JSON) names, or None."""
        extension = resource.get(quirks.ENTERPRISE_SCHEMA)
        manager = extension.get("manager") if isinstance(extension, dict) else None
        return str(manager["value"]) if isinstance(manager, dict) and "value" in manager else None

    def _disabling(self, current: Record) -> dict[str, Any]:
        """The stored changes that set `active` to false through the mapping's rule."""
        stored = self._as_request(current)
        before = self.mapping.to_backend(stored, current=current.values, defaults=False)
        after = self.mapping.to_backend(
            {**stored, "active": False}, current=current.values, defaults=False
        )
        return self.mapping.changes(before, after)

    async def _disable(self, current: Record) -> Record:
        """Set `active` to false through the mapping's rule, whatever it stores."""
        changes = self._disabling(current)
        if not changes:
            return current
        return await self.connector.update(
            self.kind, current.id, changes, if_version=current.version
        )

    def _deactivates(self, current: Record, requested: Any) -> bool:
        """Whether a write sets `active` to false where the policy does more than store it.

        Only a change counts: an inactive user's title may be updated without deleting it.
        Without an `active` rule the stored state is unknown, so every false counts.
        """
        if requested is not False or self.on_deactivate == "disable":
            return False
        if self.on_deactivate == "refuse":
            raise self._cannot_disable()
        return self._as_request(current).get("active") is not False

    async def _deactivate(self, current: Record) -> Record:
        """on_deactivate = "delete": deprovision as DELETE does; answer with the last state,
        disabled as the client asked (a body saying `active: true` would read as a
        deactivation that failed, and be sent again)."""
        disabled = None
        if self.maps_active:
            merged = {**current.values, **self._disabling(current)}
            disabled = {field: value for field, value in merged.items() if value is not None}
        await self._deprovision(current)
        if disabled is None:
            return current
        return dataclasses.replace(current, values=disabled)

    def _cannot_disable(self) -> ScimError:
        kind = self.kind.value
        if self.maps_active or self.on_deactivate == "delete":  # the operator's choice
            reason = f'{kind}.on_deactivate is "{self.on_deactivate}" on this service'
        else:
            reason = (
                f"the mapping stores no account state (set {kind}.on_deactivate to delete "
                "them instead)"
            )
        return ScimError(
            400, f"active: this service does not disable {kind}: {reason}", "invalidValue"
        )

    # --- reads --------------------------------------------------------------------

    async def get(self, id: str, read: ReadOptions) -> Record:
        with self._scim_field_names():
            return await self.connector.get(
                self.kind,
                id,
                with_members=read.members,
                with_groups=read.groups,
            )

    async def search(self, query: Query) -> Page:
        """A value the backend cannot compare is the filter's fault: 400 invalidFilter."""
        try:
            with self._scim_field_names():
                return await self.connector.search(self.kind, query)
        except InvalidValue as error:
            subject = f"{error.field}: " if error.field else ""
            # sortBy's own fault is invalidValue, as a mapping's unsortable attribute is.
            scim_type = "invalidValue" if isinstance(error, Unsortable) else "invalidFilter"
            raise ScimError(400, f"{subject}{error.message}", scim_type) from None

    async def manager_names(self, records: list[Record]) -> dict[str, str | None]:
        """Display names of the managers of a page of users, in one query."""
        if self.manager_field is None:
            return {}
        ids = sorted(
            {str(r.values[self.manager_field]) for r in records if r.values.get(self.manager_field)}
        )
        if not ids:
            return {}
        users = self.mapping.spec
        where = Or(tuple(Compare(users.key, Op.EQ, each, case_exact=True) for each in ids))
        page = await self.connector.search(Kind.USERS, Query(where=where, limit=len(ids)))
        display = users.display
        return {
            record.id: (
                str(record.values[display]) if display and record.values.get(display) else None
            )
            for record in page.records
        }

    # --- helpers ------------------------------------------------------------------

    def _check_computed(
        self, computed: list[tuple[str, Any]], stored: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        """The values a PATCH sent for attributes the mapping computes, each compared with
        what the attribute reads once the PATCH's other operations are made: equal, the
        operation changes nothing (RFC 7644 §3.5.2 forbids modifying a readOnly attribute,
        not naming its value), and it passes; else 400 mutability, naming both.

        Entra's default attribute mappings send `displayName` with every rename, beside
        the names a template (`{name.givenName} {name.familyName}`) makes it of: refused
        outright, the whole PATCH failed, the rename with it."""
        if not computed:
            return
        values = {name: value for name, value in {**stored, **changes}.items() if value is not None}
        shown = self.mapping.to_scim(values)
        core = f"{self.core_schema.lower()}:"
        for path, sent in computed:
            # A core attribute may come with its schema's URN (`...:core:2.0:User:displayName`).
            plain = path[len(core) :] if path.lower().startswith(core) else path
            reads = _value_at(shown, plain)
            if not _same_text(reads, sent):
                raise ScimError(
                    400,
                    f"'{path}' is computed by this service and cannot be written: after this "
                    f"PATCH it reads {reads!r}, not {sent!r}",
                    "mutability",
                )

    def _resolved_paths(
        self, payload: dict[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
        """PATCH paths checked against the resource type's schemas (RFC 7644 §3.5.2):
        one naming no attribute of the core schema or of a declared extension is 400
        invalidPath, never an operation dropped while the answer says 200. An unqualified
        name that only an extension defines (`department`, `manager.value`, as some
        clients send them) is read as that extension's, and OneLogin's legacy schema
        names as the RFC's. Paths under a schema this service does not declare stay
        tolerated and are ignored (Entra sends its directory's custom extensions whether
        or not the service maps them), unless RFC 7643 names that schema or its
        namespace (`_refused_schema`). The keys of a path-less value are paths too: each
        is checked alike, and one that selects entries (`emails[type eq "work"].value`)
        becomes an operation of its own, which scim2-models applies.

        An `add` or `replace` of an attribute the mapping computes (by its plain path) is
        taken out, with its value: `_check_computed` compares it with what the attribute
        reads after the others."""
        operations = payload.get("Operations")
        if not isinstance(operations, list):
            return payload, []
        resolved: list[Any] = []
        computed: list[tuple[str, Any]] = []
        for operation in operations:
            if not isinstance(operation, dict):
                resolved.append(operation)
                continue
            path, value = operation.get("path"), operation.get("value")
            if isinstance(path, str) and path:
                try:
                    resolved.append({**operation, "path": self._resolved_path(path, written=True)})
                except _ComputedWrite as refused:
                    op = str(operation.get("op", "")).lower()
                    plain = "[" not in path and not isinstance(value, dict | list)
                    if op not in ("add", "replace") or not plain:
                        raise
                    computed.append((refused.path, value))
            elif isinstance(value, dict):
                resolved.extend(self._pathless(operation, value))
            else:
                resolved.append(operation)
        return {**payload, "Operations": resolved}, computed

    def _pathless(self, operation: dict[str, Any], value: dict[str, Any]) -> list[Any]:
        kept: dict[str, Any] = {}
        selections: list[dict[str, Any]] = []
        for key, item in value.items():
            target = quirks.canonical_path(key, self.core_schema)
            if target.lower() in self._attribute_names and isinstance(item, dict):
                kept[target] = item  # an extension's attributes, as an object
                continue
            target = self._resolved_path(target)
            if "[" in target:
                selections.append({**operation, "path": target, "value": item})
            else:
                kept[target] = item
        return ([{**operation, "value": kept}] if kept or not selections else []) + selections

    def _resolved_path(self, path: str, *, written: bool = False) -> str:
        """`path` as scim2-models is to apply it, or ScimError. `written`: an operation
        names it as its target, which must not be computed by the mapping (RFC 7644
        §3.5.2: 400 mutability; a path-less value's computed keys are ignored instead,
        as a PUT's are)."""
        path = quirks.canonical_path(path, self.core_schema)
        urn, name = "", path
        if path.lower().startswith("urn:"):
            known = next(
                (each for each in self._attribute_names if path.lower().startswith(each + ":")),
                None,
            )
            if known is None:
                if self._refused_schema(path):
                    raise ScimError(
                        400,
                        f"'{path}' names a schema this resource does not have (its schemas: "
                        f"{', '.join(sorted(self.known_schemas))})",
                        "invalidPath",
                    )
                return path  # a schema of no RFC this service does not declare: ignored
            urn, name = known, path[len(known) + 1 :]
        parsed = _PATH_NAMES.match(name)
        if parsed is None:
            return path  # not a path at all: scim2-models says so (invalidPath)
        wanted, sub = parsed["attribute"].lower(), (parsed["sub"] or "").lower()

        def defines(schema: str) -> bool:
            attributes = self._attribute_names[schema]
            return wanted in attributes and (not sub or sub in attributes[wanted])

        schema = next(
            (
                each
                for each in ([urn] if urn else [self.core_schema.lower(), *self._extensions])
                if defines(each)
            ),
            None,
        )
        if schema is None:
            raise ScimError(400, f"'{path}' names no attribute of this resource", "invalidPath")
        qualified = path
        if not urn and schema != self.core_schema.lower():
            qualified = f"{self._urn_of[schema]}:{path}"
        if written and self._is_computed(schema, wanted, sub):
            raise _ComputedWrite(qualified)
        return qualified

    def _refused_schema(self, path: str) -> bool:
        """Whether `path` names a schema of RFC 7643 this resource type does not have:
        the other type's core schema (a user's `...:core:2.0:Group:displayName`), a name
        under the RFC's own core or enterprise namespace that no schema has (a misspelt
        `...:enterprise:2.0:Usr:department`). Those are mistakes (400 invalidPath, RFC
        7644 §3.5.2), not the custom extensions of an identity provider's directory
        (Entra's `...:extension:<name>:2.0:User:...`), which stay tolerated and ignored;
        so does the enterprise extension where the mapping does not declare it, which
        identity providers send by default (Entra's manager removal, `manager`, is read
        as the enterprise extension's on any resource)."""
        lowered, enterprise = path.lower(), quirks.ENTERPRISE_SCHEMA.lower()
        if lowered in self._attribute_names:  # a schema of its own, named whole
            return False
        if lowered == enterprise or lowered.startswith(enterprise + ":"):
            return False
        return lowered.startswith(_RFC_NAMESPACES)

    def _is_computed(self, schema: str, attribute: str, sub: str) -> bool:
        item = self._announced.get(schema, {}).get(attribute)
        if item is None:
            return False
        computed_subs = {name.lower() for name in item.read_only_sub_attributes}
        return item.read_only or sub in computed_subs

    @property
    def _name_attribute(self) -> str:
        return NAME_ATTRIBUTE[self.kind]

    def _refuse_blank_name(self, name: Any) -> None:
        """userName identifies the user to the service provider (RFC 7643 §4.1.1), and
        displayName a group (§4.2, required): one of spaces alone names no one ("" is
        refused as missing already), and no filter can compare it."""
        if isinstance(name, str) and not name.strip():
            raise ScimError(400, f"{self._name_attribute} must not be blank", "invalidValue")

    def _composed_name(
        self, scim: dict[str, Any], stored: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The resource with its name in NFC (mappings.names), or as stored when the
        client sent the stored name in another form."""
        name = self._name_attribute
        if name not in scim:
            return scim
        return {**scim, name: composed(scim[name], (stored or {}).get(name))}

    def _validated(self, payload: dict[str, Any], context: Context) -> dict[str, Any]:
        normalized = quirks.normalize_resource(
            payload, core_schema=self.core_schema, known_schemas=self.known_schemas
        )
        normalized = without_read_only(normalized, self.model)
        if self.kind is Kind.GROUPS:
            # Each member as sent names a user: `{"value": null}` validates, then dumps
            # to nothing, and the group was made without it under a 201.
            sent = next((v for k, v in normalized.items() if k.lower() == "members"), None)
            member_ids(sent)
        resource = self.model.model_validate(normalized, scim_ctx=context, scim_policy=POLICY)
        return resource.model_dump(scim_ctx=context, scim_policy=POLICY)

    def _as_request(self, record: Record) -> dict[str, Any]:
        """The stored record in the shape a request carries, for a like-for-like diff."""
        return self.mapping.to_scim(record.values)

    def _as_model(self, record: Record) -> Resource[Any]:
        """The stored record as a model a PATCH can be applied to.

        A legacy backend may hold values the model refuses (an email without a dot). Such
        attributes are left out of the model: the PATCH then leaves them as stored, unless
        it writes them itself, and a stored value never blocks changing another attribute.
        """
        body = {"schemas": [self.core_schema, *self.extension_schemas], **self._as_request(record)}
        while True:
            try:
                return self.model.model_validate(body, scim_policy=POLICY)
            except ValidationError as error:
                located = [_attribute_of(problem["loc"]) for problem in error.errors()]
                refused = {each for each in located if each is not None}
                if not refused or len(refused) < len(set(located)):
                    raise
                for urn, name in refused:
                    holder = body.get(urn) if urn else body
                    if not isinstance(holder, dict) or holder.pop(name, None) is None:
                        raise

    def _dump(self, resource: Resource[Any]) -> dict[str, Any]:
        return resource.model_dump(
            scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST, scim_policy=POLICY
        )

    def _check_if_match(self, record: Record, if_match: set[str] | None) -> None:
        if if_match is not None and "*" not in if_match and record.version not in if_match:
            raise ScimError(412, "the resource has changed since the version in If-Match")

    @contextmanager
    def _scim_field_names(self, *, writing: bool = False) -> Iterator[None]:
        """Name the SCIM attribute, not the backend field, in a connector's error; in a
        write's, say how a value refused is made when the mapping makes it."""
        try:
            yield
        except ConnectorError as error:
            if error.field and error.field != "members":
                made = self.mapping.made_from(error.field) if writing else None
                if made is not None and type(error) is InvalidValue:
                    error.message += f" ({made})"
                error.field = self.mapping.attribute_of(error.field) or error.field
            if isinstance(error, PartiallyWritten):
                error.written = tuple(self.mapping.attribute_of(f) or f for f in error.written)
            raise


def _apply_operation(
    patch: PatchOp[Any], operation: PatchOperation[Any], resource: Resource[Any]
) -> None:
    """One PATCH operation applied to `resource`. A path filter that matches no entry
    is 400 noTarget (RFC 7644 §3.5.2.3), except one selecting an entry by its type or
    primary flag alone, which creates the entry as Entra expects (see SLOT_SELECTORS)."""
    single = patch.model_copy(update={"operations": [operation]})
    try:
        single.patch(resource, scim_policy=TARGETS_REQUIRED)
    except NoTargetException:
        if not _selects_a_slot(operation):
            raise
        single.patch(resource, scim_policy=POLICY)


def _selects_a_slot(operation: PatchOperation[Any]) -> bool:
    """Whether the operation's path filter is `eq` terms on SLOT_SELECTORS, and-joined."""
    chosen = operation.path.value_filter if operation.path is not None else None
    if chosen is None:
        return False
    terms = chosen.terms if isinstance(chosen, LogicalExpr) else (chosen,)
    if isinstance(chosen, LogicalExpr) and chosen.op is not LogicalOperator.and_:
        return False
    return all(
        isinstance(term, Comparison)
        and term.op is CompareOperator.eq
        and term.attr_path.sub_attr is None
        and term.attr_path.uri is None
        and term.attr_path.attr.lower() in SLOT_SELECTORS
        for term in terms
    )


def _attribute_of(location: tuple[Any, ...]) -> tuple[str | None, str] | None:
    """(extension URN or None, attribute name) of a validation error's location."""
    names = [part for part in location if isinstance(part, str)]
    if not names:
        return None
    if names[0].lower().startswith("urn:") and len(names) > 1:
        return names[0], names[1]
    return None, names[0]


def deprovisioning(policy: UserPolicy | GroupPolicy, maps_active: bool) -> str:
    """What `active` set to false does: the policy's choice, or the default for the mapping."""
    chosen = getattr(policy, "on_deactivate", None)
    if chosen is not None:
        return str(chosen)
    return "disable" if maps_active else "refuse"


def policy_problems(settings: Settings, mapping: Mapping) -> list[str]:
    """Deprovisioning choices the mapping cannot carry out, one line each."""
    source = str(settings.source)
    problems: list[str] = []
    if not mapping.users.maps("active"):
        for key, value in (
            ("on_delete", settings.users.on_delete),
            ("on_deactivate", settings.users.on_deactivate),
        ):
            if value == "disable":
                problems.append(
                    f'{source}: users.{key}: "disable" needs an active rule in the mapping '
                    f"{mapping.source}"
                )
    else:
        problems += _state_problems(settings, mapping)
    if settings.groups.on_delete == "move" and mapping.groups is None:
        problems.append(f"{source}: groups.on_delete: the mapping {mapping.source} maps no groups")
    return problems


def _state_problems(settings: Settings, mapping: Mapping) -> list[str]:
    """Policies the mapping's `active` rule cannot carry out: a map without a value for
    false (`map = { true = "A" }`) would answer every DELETE or deactivation 400.

    Disabling writes false under on_delete "disable" and "move" (an archived entry is
    disabled too) and under on_deactivate "disable" and "delete" (whose answer shows the
    account disabled); on_deactivate "disable" also lets a client enable it again (true).
    """
    on_deactivate = deprovisioning(settings.users, maps_active=True)
    implied = "" if settings.users.on_deactivate is not None else " (the default)"
    needs: list[tuple[str, str, tuple[bool, ...]]] = []
    if settings.users.on_delete in ("disable", "move"):
        needs.append(("on_delete", f'"{settings.users.on_delete}"', (False,)))
    if on_deactivate == "disable":
        needs.append(("on_deactivate", f'"disable"{implied}', (False, True)))
    elif on_deactivate == "delete":
        needs.append(("on_deactivate", '"delete"', (False,)))
    problems = []
    for key, chosen, states in needs:
        missing = [state for state in states if not mapping.users.stores("active", state)]
        if missing:
            spelled = " or ".join("true" if state else "false" for state in missing)
            problems.append(
                f"{settings.source}: users.{key}: {chosen} needs the active rule of the "
                f"mapping {mapping.source} to store {spelled}, which its map cannot"
            )
    return problems


class _ComputedWrite(ScimError):
    """A PATCH operation that writes an attribute the mapping computes (400 mutability
    unless it changes nothing: `ResourceService._check_computed`)."""

    def __init__(self, path: str) -> None:
        detail = f"'{path}' is computed by this service and cannot be written"
        super().__init__(400, detail, "mutability")
        self.path = path


def _value_at(resource: dict[str, Any], path: str) -> Any:
    """The value at a plain attribute path (`displayName`, `name.formatted`, an
    extension's `urn:...:User:department`) of a resource as a dict; None when absent.
    Attribute names compare case-insensitively (RFC 7643 §2.1)."""
    node: Any = resource
    if path.lower().startswith("urn:"):
        urn, _, path = path.rpartition(":")
        node = get_ci(node, urn)
    for name in path.split("."):
        node = get_ci(node, name)
    return node


def _same_text(reads: Any, sent: Any) -> bool:
    """Whether a value sent is the one an attribute reads: strings compared as a person
    reads them (case and runs of spaces aside: displayName is not caseExact)."""
    if isinstance(reads, str) and isinstance(sent, str):
        return " ".join(reads.split()).casefold() == " ".join(sent.split()).casefold()
    return bool(reads == sent)
