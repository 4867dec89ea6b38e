"""The LDAP connector: SCIM users and groups as entries of an existing directory.

Each operation runs in a worker thread (connectors.ldap.pool) and sends the directory
only what changed: a member added to a group of 50,000 is one modify with one value,
and nothing of the other 49,999 is read. Entries are found by their stable key
(entryUUID, objectGUID, nsUniqueId), never by DN, since a rename changes the DN.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NamedTuple, TypeVar

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.protocol.rfc4527 import post_read_control

from connectors.base import (
    ENABLED_BY_LOCATION,
    And,
    BackendSchema,
    Change,
    Compare,
    Condition,
    Conflict,
    ConnectorError,
    Constant,
    EventLost,
    InvalidValue,
    Journal,
    Kind,
    MemberChanges,
    MemberRef,
    Membership,
    Not,
    NotFound,
    Op,
    Or,
    Page,
    PartiallyWritten,
    PreconditionFailed,
    Present,
    Query,
    Record,
    Sort,
    Unavailable,
    Unsortable,
    mapping_origin,
    no_such_members,
)
from connectors.forget_board import ForgetBoard
from connectors.group_commit import MemberWritesTogether, UpdateTarget
from connectors.ldap import ber
from connectors.ldap import dn as dns
from connectors.ldap.ber import Control
from connectors.ldap.cursors import PagedSearch, Segment, cursor_cache
from connectors.ldap.directory import (
    Entry,
    Location,
    RefCache,
    add_entry,
    entries_of,
    search,
    search_all,
)
from connectors.ldap.errors import CredentialsRefused, translated_errors
from connectors.ldap.filters import NOTHING, FilterContext, compile_filter, escape
from connectors.ldap.pool import ConnectionPool, Slot
from connectors.ldap.schema import (
    ASSERTION,
    POST_READ,
    DirectorySchema,
    mapping_problems,
    naming_contexts,
    read_schema,
    supported_controls,
)
from connectors.ldap.settings import LdapSettings
from connectors.ldap.values import KeyCodec, text_of, to_directory
from connectors.spelling import BACKEND_NEAR, did_you_mean

log = logging.getLogger("scim_bridge.ldap")

T = TypeVar("T")


class _Dependent(NamedTuple):
    """An entry a user's deletion changes, and its record before (when journaled)."""

    location: Location
    dn: str
    field: str | None  # the reference emptied; None: a group the user leaves
    before: Record | None


class _Left(NamedTuple):
    """An entry a user's deletion changed by the service's own write (a group it left),
    and the change for the journal (None when none is told)."""

    dn: str
    change: Change | None


def _told(changes: Iterable[_Left]) -> list[Change]:
    """The changes of `changes` a journal is to be told of."""
    return [each.change for each in changes if each.change is not None]


class _MemberTargets(NamedTuple):
    """Member changes looked up: member attribute value -> SCIM id, for the whole set
    (`replace`) or for those joining and leaving."""

    replace: dict[str, str] | None
    joining: dict[str, str]
    leaving: dict[str, str]


class _WriteHold:
    """One update's hold on its group (`LdapConnector._held`): taken once, however often
    asked for, and let go once the group is written (`written`), since what follows
    reads; a correction after that is made in `again`. With a journal, whose change
    records the state read back as `after`, the hold lasts until `close`, so that no
    other write slips in before that read."""

    def __init__(
        self, hold: Callable[[], AbstractContextManager[None]], *, to_the_end: bool
    ) -> None:
        self._hold = hold
        self._to_the_end = to_the_end
        self._stack = contextlib.ExitStack()
        self._taken = False

    def take(self) -> None:
        if not self._taken:
            self._stack.enter_context(self._hold())
            self._taken = True

    def written(self) -> None:
        if not self._to_the_end:
            self._stack.close()

    def again(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext() if self._to_the_end else self._hold()

    def close(self) -> None:
        self._stack.close()


class LdapConnector(MemberWritesTogether):
    """The Connector protocol (connectors.base) over ldap3."""

    def __init__(
        self,
        settings: LdapSettings,
        schema: BackendSchema,
        journal: Journal | None = None,
        forgets: ForgetBoard | None = None,
    ) -> None:
        """`forgets`: the board the service's workers tell each other the DNs their writes
        made stale on (connectors.forget_board); None for a service of one process."""
        self.schema = schema
        self._settings = settings
        self._journal = journal
        """Told of every write once the directory has made it (it has no transactions)."""
        self._journal_order = asyncio.Lock()
        self._pool: ConnectionPool | None = None
        self._schema_read: DirectorySchema | None = None
        self._post_read = False
        """The directory answers a write with the entry (RFC 4527): no read after an add."""
        self._cursors = cursor_cache()
        self._assertion = False
        """The directory takes the Assertion control (RFC 4528): an If-Match is checked
        by the directory within the attribute modify itself (`_still_at`)."""
        self._member_writes = self._group_commit()
        self._board = forgets or ForgetBoard.private()
        """Where the workers hold a group while one of them writes it (`_held`)."""
        self._problems = schema_problems(schema)
        members = schema.memberships
        self._users = Location(
            kind=Kind.USERS,
            spec=schema.users,
            container=self._dn(schema.users.object),
            disabled=self._disabled(schema.users),
            key=KeyCodec(schema.users.key),
            member_of=members.member_of if members else None,
            refs=RefCache(board=forgets),
        )
        self._groups: Location | None = None
        if schema.groups is not None:
            self._groups = Location(
                kind=Kind.GROUPS,
                spec=schema.groups,
                container=self._dn(schema.groups.object),
                disabled=self._disabled(schema.groups),
                key=KeyCodec(schema.groups.key),
                member_attribute=members.field if members else None,
                refs=RefCache(board=forgets),
            )
        fields = {f.name for spec in (schema.users, schema.groups) if spec for f in spec.fields}
        self._known_fields = fields | ({members.field} if members and members.field else set())

    @contextmanager
    def _held(self, kind: Kind, id: str) -> Iterator[None]:
        """A group held against every other write of it by this service, in any worker,
        until the block ends (connectors.forget_board `holding`).

        The directory checks no condition on a member modify: an If-Match is read, then
        written, and two workers each found the version it named and both wrote (with
        ten such PATCHes at once, two answered 204). And slapd's memberof overlay does not
        keep two writes of one group's members apart: a member added while the group was
        deleted kept the group in its memberOf, where a group made again under the name
        then found it. Users need none: their If-Match goes with the modify (`_still_at`).
        """
        if kind is not Kind.GROUPS:
            yield
            return
        with self._board.holding(f"group:{id.lower()}"):
            yield

    def _held_while(
        self,
        kind: Kind,
        id: str,
        work: Callable[[Slot, ldap3.Connection], T],
        slot: Slot,
        connection: ldap3.Connection,
    ) -> T:
        with self._held(kind, id):
            return work(slot, connection)

    def _dn(self, relative: str) -> str:
        return dns.join(relative, self._settings.base_dn)

    def _disabled(self, spec: Any) -> str | None:
        directory = spec.directory
        if directory is None or directory.disabled_object is None:
            return None
        return self._dn(directory.disabled_object)

    # --- Lifetime ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._problems:
            raise ConnectorError("; ".join(self._problems))
        self._member_writes = self._group_commit()  # closed with the connector before
        try:
            self._pool = ConnectionPool(self._settings)
        except KeyError:
            # Not named: what password_env holds may be the password itself, pasted there.
            raise ConnectorError("the environment variable password_env names is not set") from None
        try:
            self._schema_read = await self._run(lambda slot, connection: read_schema(connection))
            controls = await self._run(lambda slot, connection: supported_controls(connection))
            self._post_read = POST_READ in controls
            self._assertion = ASSERTION in controls
        except CredentialsRefused as refused:
            raise ConnectorError(f"{refused.message}: {self._credentials_to_check()}") from None
        except Unavailable as error:
            reasons = self._pool.last_failure or error.message
            raise Unavailable(
                f"cannot connect to the directory ({reasons})", retry_after=error.retry_after
            ) from None

    def _credentials_to_check(self) -> str:
        """The settings a refused bind points at: the bind DN, and the variable holding the
        password by its name (set, so a name: the password itself is never said)."""
        variable = self._settings.password_env
        if variable is None:
            return "check connector.bind_dn"
        return (
            f"check connector.bind_dn, and the password in the environment variable "
            f"{variable} (named by connector.password_env)"
        )

    async def close(self) -> None:
        await self._member_writes.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    warnings: tuple[str, ...] = ()
    """What the last verify() found worth saying that does not stop the service (a
    failover server down, an anonymous connection), one line each; also logged."""

    async def verify(self, *, archives: Mapping[str, str] | None = None) -> list[str]:
        """base_dn exists (one that does not is said once, with the trees the directory
        holds); every container the mapping names exists, and so does every archive (a
        deletion would otherwise disable the user, fail to move it, and answer 404 as
        if it were gone); the directory's schema knows every object class and attribute
        type it names, and allows and fills what the mapping writes
        (connectors.ldap.schema.mapping_problems); an anonymous connection may write
        (a problem when the directory says it may not, a warning when it cannot tell).
        Each configured server is tried: one that does not answer is a warning, since
        another one does (`warnings`)."""
        warnings: list[str] = []

        def check(slot: Slot, connection: ldap3.Connection) -> list[str]:
            problems = self._base_dn_problems(connection)
            if not problems:  # else every entry under it is missing too: said once
                problems = self._missing_containers(connection, archives or {})
            if not problems:  # the entries are looked at in containers that exist
                problems += self._member_of_problems(connection, warnings)
                warnings.extend(self._version_warnings(connection))
            if not self._settings.bind_dn:
                container = self._users.container
                refused = _anonymous_write_refused(connection, container)
                if refused is not None:
                    problems.append(
                        f"bind_dn: none is set, and the directory refuses writes from an "
                        f"anonymous connection ({refused}): set bind_dn and password_env to "
                        "an account that may write"
                    )
                else:
                    warnings.append(
                        "bind_dn: none is set, so the service connects anonymously: every "
                        f"write fails unless the directory lets anonymous connections write "
                        f"under {container!r}"
                    )
            return problems

        problems = await self._run(check)
        if self._pool is not None and len(self._settings.urls) > 1:
            warnings += (
                f"urls: {failed}; another server answers, and is used while this one is down"
                for failed in await self._pool.unreachable()
            )
        self.warnings = tuple(warnings)
        for line in warnings:
            log.warning("connector: %s", line)
        schema = self._schema_read
        if schema is None:
            return problems
        for location in self._locations():
            kind = location.kind.value
            problems += (
                f"{kind}: the directory's schema has no object class {name!r}"
                + did_you_mean(name, schema.class_names(), BACKEND_NEAR)
                for name in location.directory.classes
                if not schema.knows_class(name)
            )
            problems += (
                f"{kind}: the directory's schema has no attribute type {name!r}"
                + did_you_mean(name, schema.attribute_names(), BACKEND_NEAR)
                for name in self._attribute_types(location)
                if not schema.knows_attribute(name)
            )
        return problems + mapping_problems(schema, self.schema)

    def _base_dn_problems(self, connection: ldap3.Connection) -> list[str]:
        """base_dn must exist; one that does not is said as such, with the trees the
        directory holds (its naming contexts): a slip there (`dc=example,dc=com` for
        `dc=example,dc=org`) was reported as every container missing, which pointed at
        the mapping."""
        base = self._settings.base_dn
        if not base or _exists(connection, base):
            return []
        contexts = naming_contexts(connection)
        if dns.normalized(base) in {dns.normalized(each) for each in contexts}:
            held = ": the directory serves this tree, but holds no entry at its top yet"
        else:
            held = f"; the directory holds {', '.join(contexts)}" if contexts else ""
        return [f"base_dn: the entry {base!r} does not exist{held}"]

    def _missing_containers(
        self, connection: ldap3.Connection, archives: Mapping[str, str]
    ) -> list[str]:
        """Each container of the mapping, and each archive (`users.archive`: its value),
        that the directory does not hold, one line each."""
        problems: list[str] = []
        for location in self._locations():
            kind = location.kind.value
            for key, relative in _containers(location):
                entry = self._dn(relative)
                if _exists(connection, entry):
                    continue
                hint = self._relative_hint(key, relative)
                where = mapping_origin(self.schema, f"{kind}.{key}") if hint else kind
                problems.append(f"{where}: the entry {entry!r} does not exist{hint}")
        for key, container in archives.items():
            archive = self._dn(container)
            if not _exists(connection, archive):
                hint = self._relative_hint("archive", container)
                problems.append(f"{key}: the entry {archive!r} does not exist{hint}")
        return problems

    def _relative_hint(self, key: str, relative: str) -> str:
        """What to write instead of a value relative to base_dn that was written with
        base_dn at its end (and so names it twice); empty when it was not."""
        meant = dns.without_suffix(relative, self._settings.base_dn)
        if meant is None:
            return ""
        return (
            f": {key} is relative to connector.base_dn, which it already ends with; "
            f"write {key} = {json.dumps(meant, ensure_ascii=False)}"
        )

    def _member_of_problems(self, connection: ldap3.Connection, warnings: list[str]) -> list[str]:
        """memberOf named in the mapping must be kept by the directory for the member
        attribute: a fresh 389 DS keeps none (its MemberOf plugin is off, and follows
        `member`, not `uniqueMember`), and every group then read as empty and every user
        as in none, with nothing said. Checked on the first users found in a group: their
        memberOf must name each group whose member attribute names them. Where no user
        is in a group yet (a new directory), it cannot be told: a warning says so."""
        member_of, groups = self._users.member_of, self._groups
        members = self.schema.memberships
        if member_of is None or groups is None or members is None or members.field is None:
            return []
        if members.member_value is not None:
            return []  # member values that are not DNs: no directory keeps memberOf for them
        attribute = members.field
        looked_at = 0
        untold = (
            f"groups.members.member_of: no user found is in a group yet, so whether the "
            f"directory keeps {member_of} for {attribute} cannot be told (it is looked at "
            f"again at each start). If it does not, every group will read as empty: turn "
            f"that on in the directory (389 DS: the MemberOf plugin, with memberofgroupattr: "
            f"{attribute}; OpenLDAP: the memberof overlay, with memberof-member-ad "
            f"{attribute}), or remove member_of from the mapping"
        )
        for base in self._users.bases:
            for user in search_all(connection, base, self._users.only_ours(ANY), [member_of]):
                looked_at += 1
                if looked_at > MEMBER_OF_SAMPLE:
                    warnings.append(untold)
                    return []
                term = groups.only_ours(f"({attribute}={escape(user.dn)})")
                holding = {
                    dns.normalized(group.dn)
                    for group_base in groups.bases
                    for group in search_all(connection, group_base, term, ["1.1"])
                }
                if not holding:
                    continue
                kept = {dns.normalized(str(value)) for value in user.values(member_of)}
                missing = sorted(holding - kept)
                if not missing:
                    return []
                return [
                    f"groups.members.member_of: the directory does not keep {member_of} for "
                    f"{attribute}: {user.dn!r} is in {missing[0]!r} by its {attribute}, and "
                    f"its {member_of} does not say so. Turn that on in the directory (389 DS: "
                    f"the MemberOf plugin, with memberofgroupattr: {attribute}; OpenLDAP: "
                    f"the memberof overlay, with memberof-member-ad {attribute}), or remove "
                    f"member_of from the mapping, and members are read from {attribute}"
                ]
        warnings.append(untold)
        return []

    def _version_warnings(self, connection: ldap3.Connection) -> list[str]:
        """The version attribute the mapping names must be on the entries: 389 DS keeps
        `entryusn` only while its USN plugin is on. Without it the service still works,
        on ETags hashed from the attributes read, which miss what those leave out."""
        found: list[str] = []
        for location in self._locations():
            version = location.spec.version
            if version is None:
                continue
            for base in location.bases:
                term = location.only_ours(ANY)
                first = next(iter(search_all(connection, base, term, [version])), None)
                if first is not None and first.first(version) is None:
                    found.append(
                        f"{location.kind.value}: version: the directory keeps no {version} "
                        f"on {first.dn!r} (389 DS: turn the USN plugin on for entryusn), so "
                        "ETags are a hash of the attributes read: a group's ETag then "
                        "misses member changes within one second of another write"
                    )
                    break
        return found

    def _attribute_types(self, location: Location) -> list[str]:
        """Every attribute type the mapping names for a resource type."""
        spec = location.spec
        names = [*location.attributes(), location.naming_attribute, *spec.constants]
        if location.member_attribute:
            names.append(location.member_attribute)
        members = self.schema.memberships
        if location.kind is Kind.USERS and members is not None and members.member_value:
            names.append(members.member_value)
        return list(dict.fromkeys(names))

    # --- Reading ----------------------------------------------------------------------

    async def get(
        self, kind: Kind, id: str, *, with_members: bool = False, with_groups: bool = False
    ) -> Record:
        location = self._location(kind)
        attributes = location.attributes(members=with_members and self._reads_member_values())

        def read(slot: Slot, connection: ldap3.Connection) -> Record:
            entry = location.find(connection, id, attributes)
            return self._records(connection, location, [entry], with_members, with_groups)[0]

        return await self._run(read)

    async def search(self, kind: Kind, query: Query) -> Page:
        location = self._location(kind)
        # Members and groups are read afterwards, on another connection as a rule, so
        # that the paged search of this page keeps its place for the next one.
        member_values = query.with_members and self._reads_member_values()
        attributes = location.attributes(members=member_values)
        plan = PagedSearch((kind.value, *location.bases), attributes, query)
        sort_key = None
        if query.sort is not None:
            described = location.spec.field_named(query.sort.field)
            if described is not None and described.reference is not None:
                # The directory holds the referenced entry's DN: the order would be its
                # DNs', not the ids' the client reads (RFC 7644 §3.4.2.3).
                message = "a reference cannot be sorted by in a directory, which holds DNs"
                raise Unsortable(message, field=query.sort.field)
            sort_key = _sort_key(location, query.sort)
        cursor = self._cursors.get(plan.key(query.offset))
        prefer = cursor.slot if cursor is not None else None

        def page(
            slot: Slot, connection: ldap3.Connection
        ) -> tuple[list[Entry], int, list[Record] | None]:
            segments = self._segments(connection, location, query.where)
            entries, total = plan.run(slot, connection, segments, self._cursors, sort_key)
            if entries and query.offset == 0 and len(entries) == total:
                # The whole result (a lookup, as a rule): no cursor waits on this
                # connection, so its records are completed here, in the same thread hop.
                records = self._records(
                    connection, location, entries, query.with_members, query.with_groups
                )
                return entries, total, records
            return entries, total, None

        entries, total, complete = await self._run(page, prefer=prefer)
        if complete is not None:
            return Page(records=complete, total=total)
        if not entries:
            return Page(records=[], total=total)

        def expand(slot: Slot, connection: ldap3.Connection) -> list[Record]:
            return self._records(
                connection, location, entries, query.with_members, query.with_groups
            )

        return Page(records=await self._run(expand), total=total)

    # --- Writing ----------------------------------------------------------------------

    async def create(
        self, kind: Kind, values: Mapping[str, Any], *, members: Collection[str] = ()
    ) -> Record:
        location = self._location(kind)
        if members and kind is not Kind.GROUPS:
            raise InvalidValue("only groups have members", field="members")
        await self._journal_ready(kind)

        def add(slot: Slot, connection: ldap3.Connection) -> Record:
            directory = location.directory
            given = dict(values)
            enabled = given.pop(ENABLED_BY_LOCATION, True)
            naming = given.get(directory.naming_field)
            if naming is None or naming == "":
                raise InvalidValue("a value is required", field=directory.naming_field)
            self._check_unique(connection, location, given, current=None)
            attributes: dict[str, Any] = {"objectClass": list(directory.classes)}
            for name, value in {**location.spec.constants, **given}.items():
                written = self._attribute_values(connection, location, name, value)
                if written:
                    attributes[name] = written
            attributes.setdefault(directory.naming_attribute, [to_directory(naming)])
            joining: dict[str, str] = {}
            if kind is Kind.GROUPS and self._groups is not None:
                joining = self._member_entries(connection, members, required=True)
                member_values = list(joining)
                placeholder = self._placeholder()
                if not member_values and placeholder:
                    member_values = [placeholder]
                if member_values:
                    attributes[self._member_attribute()] = member_values
            container = location.container if enabled is not False else location.disabled
            entry_dn = dns.join(dns.rdn(directory.naming_attribute, str(naming)), str(container))
            wanted = location.attributes(members=kind is Kind.GROUPS)
            controls = [_post_read_of(tuple(wanted))] if self._post_read else None
            with _storable_name(entry_dn, directory.naming_field):
                add_entry(connection, entry_dn, attributes, controls)
            location.refs.forget(entry_dn)  # a reference to it read before found nothing
            entry = _post_read_entry(connection, entry_dn)
            settled = self._settle_references(connection, location, entry_dn, given)
            if joining:
                settled |= self._settle_members(connection, entry_dn, joining)[1]
            if entry is None or settled:
                entry = self._read_dn(connection, location, entry_dn, kind is Kind.GROUPS)
            return self._records(connection, location, [entry], kind is Kind.GROUPS, False)[0]

        created = await self._run(add)
        joined = frozenset(member.id for member in created.members or [])
        await self._tell(Change(kind, created.id, None, created, joined))
        return created

    async def _update_now(
        self,
        target: UpdateTarget,
        changes: Mapping[str, Any],
        members: MemberChanges | None,
        if_version: str | None,
    ) -> Record:
        kind, id, with_members, with_groups = target
        location = self._location(kind)
        await self._journal_ready(kind)

        def write(slot: Slot, connection: ldap3.Connection) -> tuple[Record, Change]:
            # Members are looked up first: one naming no user is refused before anything
            # of the request is written (after a 404, when the group is not there), and
            # the group is found just before its modify, by a search that tells whether
            # it holds the placeholder: another writer has one round trip to change that.
            try:
                targets = self._member_targets(connection, members) if members else None
            except InvalidValue:
                location.find(connection, id, [])
                raise
            for _ in range(MOVED_ATTEMPTS):
                # Held from the search that reads the version (an If-Match, or other
                # attributes to write) to the last write of the group, and with members
                # alone to write, for that write alone: another worker's lookups of its
                # members, its search for the group and its reading back of what it
                # wrote go on beside this one's modify.
                hold = _WriteHold(
                    functools.partial(self._held, kind, id), to_the_end=self._journal is not None
                )
                if if_version is not None or changes:
                    hold.take()
                wrote: list[bool] = []
                try:
                    entry, placeholder_held = self._find_for_members(
                        connection, location, id, members
                    )
                    if if_version is not None and location.version_of(entry) != if_version:
                        raise PreconditionFailed("the record has changed since it was read")
                    return write_on(connection, entry, targets, placeholder_held, wrote, hold)
                except ldap_errors.LDAPNoSuchObjectResult:
                    # Made again only when nothing of it was written: a second attempt
                    # would find its changes made and tell the journal of none.
                    if wrote or not self._moved_or_gone(connection, kind, id, entry.dn):
                        raise
                    # Renamed (or deleted) by another writer since it was found: the
                    # version the caller read is gone; unconditionally, the write is made
                    # again on the entry where it is now (or answered 404).
                    if if_version is not None:
                        raise PreconditionFailed("the entry was renamed meanwhile") from None
                finally:
                    hold.close()
            raise Unavailable("the entry kept moving under concurrent writes; retry")

        def write_on(
            connection: ldap3.Connection,
            entry: Entry,
            targets: _MemberTargets | None,
            placeholder_held: bool | None,
            wrote: list[bool],
            hold: _WriteHold,
        ) -> tuple[Record, Change]:
            before = None
            if self._journal is not None:
                before = self._records(connection, location, [entry], False, False)[0]
            unchanged = self._still_at(location, entry) if if_version is not None else None
            entry_dn = self._apply(connection, location, entry, dict(changes), unchanged)
            if changes:
                wrote.append(True)
            self._settle_references(connection, location, entry_dn, changes)
            self._follow_member_value(connection, location, entry, changes)
            joined: set[str] = set()
            left: set[str] = set()
            # Members alone change (what an identity provider's PATCH does): the entry
            # comes back with the modify (Post-Read), not from another search.
            read_back = None
            if members and not changes and not with_members and self._post_read:
                read_back = _post_read_of(tuple(location.attributes()))
            fresh = None
            if targets is not None:
                hold.take()  # already, when a version was read; else for the write alone
                joined, left, fresh = self._change_members(
                    connection, entry_dn, targets, read_back, placeholder_held, hold
                )
                wrote.append(True)
            hold.written()
            if fresh is None:
                try:
                    fresh = self._read_dn(connection, location, entry_dn, with_members)
                except ldap_errors.LDAPNoSuchObjectResult:  # renamed by another meanwhile
                    attributes = location.attributes(members=with_members)
                    fresh = location.find(connection, id, attributes)
            after = self._records(connection, location, [fresh], with_members, with_groups)[0]
            return after, Change(kind, after.id, before, after, frozenset(joined), frozenset(left))

        after, change = await self._run(write)
        if changes or change.members_added or change.members_removed:
            await self._tell(change)
        return after

    async def delete(self, kind: Kind, id: str, *, if_version: str | None = None) -> None:
        """Remove the entry and every reference to it (group members, managers).

        A user leaves its groups before its entry is deleted (`_leave_groups`), so that
        each group gets a new version; the groups a failed delete leaves it out of are
        told to the journal even so (`_leave_and_delete`)."""
        location = self._location(kind)
        stuck: list[Change] = []
        await self._journal_ready()

        def remove(
            slot: Slot, connection: ldap3.Connection
        ) -> tuple[list[Change], Record, list[Change]]:
            stuck.clear()
            entry = location.find(connection, id, location.attributes())
            if if_version is not None and location.version_of(entry) != if_version:
                raise PreconditionFailed("the record has changed since it was read")
            before = self._records(connection, location, [entry], False, False)[0]
            dependents = self._dependents(connection, kind, entry)
            dependents, left = self._leave_and_delete(
                connection, entry, before.id, dependents, stuck
            )
            location.refs.forget(entry.dn)
            references = [each for each in dependents if each.field is not None]
            followers = self._forget_user(connection, entry, before.id, references)
            late = self._forget_late(connection, kind, entry, before.id, dependents)
            return _told(left), before, followers + late

        try:
            groups, removed, followers = await self._run(
                lambda slot, connection: self._held_while(kind, id, remove, slot, connection)
            )
        except BaseException:
            await self._tell(*stuck)  # groups left, and not rejoined, before the delete failed
            raise
        await self._tell(*groups, Change(kind, removed.id, removed, None), *followers)

    async def archive(
        self,
        kind: Kind,
        id: str,
        *,
        container: str,
        if_version: str | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> None:
        """Write `changes` (the account disabled), leave every group, stop being anyone's
        manager, then move under `container`. A group's members leave it first: a deleted
        group confers no membership, archived or not.

        The entry keeps its attributes and its key; outside the type's containers it is
        no longer served (a 404), which RFC 7644 §3.6 asks of a deleted resource.
        """
        location = self._location(kind)
        destination = self._dn(container)
        told: list[Change] = []
        await self._journal_ready()

        def move(slot: Slot, connection: ldap3.Connection) -> tuple[Record, list[Change]]:
            told.clear()  # a second attempt (on another connection) tells afresh
            entry = location.find(connection, id, location.attributes())
            if if_version is not None and location.version_of(entry) != if_version:
                raise PreconditionFailed("the record has changed since it was read")
            before = self._records(connection, location, [entry], False, False)[0]
            rdn, _ = dns.split_first(entry.dn)
            if _exists(connection, dns.join(rdn, destination)):
                # Refused before the account is disabled and leaves its groups: nothing
                # is written, and the 409 says so.
                raise Conflict("an archived entry with this name exists already; remove it first")
            if changes:
                unchanged = self._still_at(location, entry) if if_version is not None else None
                self._apply(connection, location, entry, dict(changes), unchanged)
                entry = location.find(connection, id, location.attributes())
                disabled = self._records(connection, location, [entry], False, False)[0]
                told.append(Change(kind, id, before, disabled))
                before = disabled
            dependents = self._dependents(connection, kind, entry)
            followers = self._forget_user(connection, entry, before.id, dependents)
            if kind is Kind.GROUPS:
                self._empty_group(connection, entry.dn)
            try:
                connection.modify_dn(entry.dn, rdn, delete_old_dn=True, new_superior=destination)
            except ldap_errors.LDAPEntryAlreadyExistsResult:
                raise Conflict(
                    "an archived entry with this name exists already; remove it first"
                ) from None
            location.refs.forget(entry.dn)
            location.refs.forget(dns.join(rdn, destination))
            return before, followers + self._forget_late(
                connection, kind, entry, before.id, dependents
            )

        try:
            moved, followers = await self._run(move)
        except BaseException:
            await self._tell(*told)  # the account disabled is told, even if the move failed
            raise
        await self._tell(*told, Change(kind, moved.id, moved, None), *followers)

    async def _journal_ready(self, *kinds: Kind) -> None:
        """Before a write that may tell changes of `kinds` (every kind when none is named):
        the journal, which is told once the directory has made the change, can record it
        (connectors.base.Journal.ready); else nothing is written."""
        if self._journal is not None:
            await self._journal.ready(kinds or tuple(Kind))

    async def _tell(self, *changes: Change) -> None:
        """Record writes that the directory has made in the journal.

        One at a time, in the order the writes finished: the events of a resource then
        keep the order of its changes. The store was asked first (`_journal_ready`); one
        that fails between the two leaves changes without their events: each is still
        tried, the log names every one lost (the resource, never its values) for the
        operator to reconcile, and the request fails without inviting a retry of a change
        that was made.
        """
        if self._journal is None or not changes:
            return
        lost: BaseException | None = None
        async with self._journal_order:
            for change in changes:
                try:
                    await self._journal.record([change], None)
                except Exception as error:
                    log.error(
                        "the directory made a change to %s %s whose event could not be stored",
                        change.kind.resource_type,
                        change.id,
                    )
                    lost = lost or error
        if lost is not None:
            raise EventLost() from lost

    # --- Operations -------------------------------------------------------------------

    async def _run(
        self, work: Callable[[Slot, ldap3.Connection], T], *, prefer: Slot | None = None
    ) -> T:
        if self._pool is None:
            raise RuntimeError("the LDAP connector is not open")
        with translated_errors(self._known_fields, self._settings.retry_after):
            return await self._pool.run(work, prefer=prefer)

    def _locations(self) -> list[Location]:
        return [self._users] + ([self._groups] if self._groups else [])

    def _location(self, kind: Kind) -> Location:
        if kind is Kind.USERS:
            return self._users
        if self._groups is None:
            raise InvalidValue("this service stores no groups")
        return self._groups

    def _read_dn(
        self, connection: ldap3.Connection, location: Location, entry_dn: str, members: bool
    ) -> Entry:
        attributes = location.attributes(members=members)
        search(connection, entry_dn, "(objectClass=*)", ldap3.BASE, attributes)
        return entries_of(connection)[0]

    # --- Records ----------------------------------------------------------------------

    def _records(
        self,
        connection: ldap3.Connection,
        location: Location,
        entries: Iterable[Entry],
        with_members: bool,
        with_groups: bool,
    ) -> list[Record]:
        records: list[Record] = []
        for entry in entries:
            record = location.record(entry)
            self._resolve_references(connection, location, record)
            if location.kind is Kind.GROUPS and with_members:
                record.members = self._members_of(connection, entry)
            if location.kind is Kind.USERS and with_groups and self._groups is not None:
                record.groups = self._groups_of(connection, entry)
            records.append(record)
        return records

    def _resolve_references(
        self, connection: ldap3.Connection, location: Location, record: Record
    ) -> None:
        """Reference fields hold DNs in the directory and SCIM ids across the interface."""
        for described in location.spec.fields:
            if described.reference is None or described.name not in record.values:
                continue
            target = self._location(described.reference)
            value = record.values[described.name]
            refs = [target.resolve(connection, str(each)) for each in _listed(value)]
            ids = [ref.id for ref in refs if ref is not None]
            if not ids:
                del record.values[described.name]
            else:
                record.values[described.name] = ids if described.multi_valued else ids[0]

    def _members_of(self, connection: ldap3.Connection, group: Entry) -> list[MemberRef]:
        """The users of a group: by memberOf in one paged search when the server keeps it."""
        users = self._users
        attribute = self._member_attribute()
        by_value = self._member_value_field()
        if by_value is not None:
            names = [str(value) for value in group.values(attribute)]
            found: list[MemberRef] = []
            for start in range(0, len(names), 200):
                chunk = names[start : start + 200]
                term = _any([f"({by_value}={escape(name)})" for name in chunk])
                for base in users.bases:
                    found += [
                        users.ref_of(e)
                        for e in search_all(connection, base, term, users.ref_attributes())
                    ]
            return sorted(found, key=lambda ref: ref.id)
        if users.member_of:
            term = f"({users.member_of}={escape(group.dn)})"
            found = [
                users.ref_of(entry)
                for base in users.bases
                for entry in search_all(connection, base, term, users.ref_attributes())
            ]
            return sorted(found, key=lambda ref: ref.id)
        placeholder = dns.normalized(self._placeholder() or "")
        refs = [
            users.resolve(connection, str(value))
            for value in group.values(attribute)
            if dns.normalized(str(value)) != placeholder
        ]
        return sorted((ref for ref in refs if ref is not None), key=lambda ref: ref.id)

    def _groups_of(self, connection: ldap3.Connection, user: Entry) -> list[MemberRef]:
        """A user's groups: from memberOf when the server keeps it, else by searching."""
        groups = self._groups
        if groups is None:
            return []
        users = self._users
        if users.member_of and self._member_value_field() is None:
            refs = [groups.resolve(connection, str(each)) for each in user.values(users.member_of)]
            return sorted((ref for ref in refs if ref is not None), key=lambda ref: ref.id)
        term = f"({self._member_attribute()}={escape(self._member_value_of(user))})"
        found_groups = [
            groups.ref_of(entry)
            for base in groups.bases
            for entry in search_all(connection, base, term, groups.ref_attributes())
        ]
        return sorted(found_groups, key=lambda ref: ref.id)

    # --- Queries ----------------------------------------------------------------------

    def _segments(
        self, connection: ldap3.Connection, location: Location, where: Condition | None
    ) -> list[Segment]:
        """One search per container, the location field decided for each."""
        segments: list[Segment] = []
        context = FilterContext(
            spec=location.spec,
            key=location.key,
            dn_of=lambda id: self._dn_of(connection, Kind.USERS, id),
            membership=lambda condition: self._membership_term(connection, location, condition),
            timestamps=frozenset(
                name for name in (location.spec.created, location.spec.modified) if name
            ),
            schema=self._schema_read,
        )
        for base in location.bases:
            enabled = base == location.container
            condition = where if where is not None else Constant(True)
            compiled = compile_filter(context, _decided(condition, enabled))
            if compiled != NOTHING:
                segments.append(Segment(base, location.only_ours(compiled)))
        return segments

    def _membership_term(
        self, connection: ldap3.Connection, location: Location, condition: Membership
    ) -> str:
        if location.kind is Kind.USERS:
            if not self._users.member_of or self._member_value_field() is not None:
                raise InvalidValue(
                    "filtering users by group needs member_of in the mapping", field="groups"
                )
            if condition.value is None:
                term = f"({self._users.member_of}=*)"
            else:
                group_dn = self._dn_of(connection, Kind.GROUPS, condition.value)
                term = (
                    NOTHING if group_dn is None else f"({self._users.member_of}={escape(group_dn)})"
                )
        else:
            attribute = self._member_attribute()
            if condition.value is None:
                term = f"({attribute}=*)"
                placeholder = self._placeholder()
                if placeholder:
                    term = f"(&{term}(!({attribute}={escape(placeholder)})))"
            else:
                user = self._find_user(connection, condition.value)
                term = (
                    NOTHING
                    if user is None
                    else f"({attribute}={escape(self._member_value_of(user))})"
                )
        if condition.op is Op.NE:
            return f"(!{term})"
        return term

    def _dn_of(self, connection: ldap3.Connection, kind: Kind, id: str) -> str | None:
        location = self._location(kind)
        try:
            return location.find(connection, id, ["1.1"]).dn
        except ConnectorError:
            return None

    def _moved_or_gone(self, connection: ldap3.Connection, kind: Kind, id: str, dn: str) -> bool:
        """Whether the entry `id`, found at `dn`, is no longer there."""
        now = self._dn_of(connection, kind, id)
        return now is None or dns.normalized(now) != dns.normalized(dn)

    def _find_user(self, connection: ldap3.Connection, id: str) -> Entry | None:
        users = self._users
        try:
            return users.find(connection, id, self._user_member_attributes())
        except ConnectorError:
            return None

    # --- Writes -----------------------------------------------------------------------

    def _attribute_values(
        self, connection: ldap3.Connection, location: Location, name: str, value: Any
    ) -> list[Any]:
        """A field value as the attribute's values; a reference id becomes the entry's DN."""
        if value is None or value == "" or value == []:
            return []
        described = location.spec.field_named(name)
        if described is not None and described.reference is not None:
            found = [
                self._dn_of(connection, described.reference, str(each)) for each in _listed(value)
            ]
            if None in found:
                raise InvalidValue(f"no {described.reference.value} record has this id", field=name)
            return [each for each in found if each is not None]
        return [to_directory(each) for each in _listed(value)]

    def _check_unique(
        self,
        connection: ldap3.Connection,
        location: Location,
        values: Mapping[str, Any],
        current: str | None,
    ) -> None:
        """RFC 7644 §3.3: 409 when another entry of the type holds a unique value."""
        for name in location.spec.unique:
            value = values.get(name)
            if value is None or value == "":
                continue
            term = f"({name}={escape(str(to_directory(value)))})"
            for base in location.bases:
                search(connection, base, term, ldap3.SUBTREE, ["1.1"], size_limit=2)
                others = [
                    e
                    for e in entries_of(connection)
                    if current is None or dns.normalized(e.dn) != dns.normalized(current)
                ]
                if others:
                    raise Conflict("the value is already taken by another record", field=name)

    def _apply(
        self,
        connection: ldap3.Connection,
        location: Location,
        entry: Entry,
        changes: dict[str, Any],
        unchanged: Control | None = None,
    ) -> str:
        """Write attribute changes, then rename or move; undo the first when the second fails.

        `unchanged` (an Assertion control) makes the attribute modify conditional on the
        entry still being at the version read: PreconditionFailed when another writer came
        between. Returns the entry's DN afterwards.
        """
        directory = location.directory
        enabled = changes.pop(ENABLED_BY_LOCATION, None)
        new_name = changes.get(directory.naming_field)
        if directory.naming_field in changes and (new_name is None or new_name == ""):
            raise InvalidValue("a value is required", field=directory.naming_field)
        self._check_unique(connection, location, changes, current=entry.dn)
        modifications: dict[str, list[tuple[str, list[Any]]]] = {}
        undo: dict[str, list[tuple[str, list[Any]]]] = {}
        for name, value in changes.items():
            if name == directory.naming_attribute:
                continue  # the modify DN below writes the naming attribute
            written = self._attribute_values(connection, location, name, value)
            modifications[name] = [(ldap3.MODIFY_REPLACE, written)]
            undo[name] = [(ldap3.MODIFY_REPLACE, entry.values(name))]
        if modifications:
            try:
                controls = [unchanged] if unchanged is not None else None
                connection.modify(entry.dn, modifications, controls=controls)
            except ldap_errors.LDAPAssertionFailedResult:
                raise PreconditionFailed("the record has changed since it was read") from None
            location.refs.forget(entry.dn)  # its display name may be among them
        old_dn = entry.dn
        rdn, parent = dns.split_first(old_dn)
        if new_name is not None and str(new_name) != dns.first_value(old_dn):
            rdn = dns.rdn(directory.naming_attribute, str(new_name))
        if enabled is not None and location.disabled is not None:
            parent = location.container if enabled else location.disabled
        new_dn = dns.join(rdn, parent)
        if new_dn == old_dn:
            return old_dn
        same_entry = dns.normalized(new_dn) == dns.normalized(old_dn)
        if same_entry and (new_name is None or str(new_name) == dns.first_value(old_dn)):
            return old_dn  # the same name, spelt differently (escapes, spaces)
        try:
            with _storable_name(rdn, directory.naming_field):
                connection.modify_dn(
                    old_dn,
                    rdn,
                    delete_old_dn=True,
                    new_superior=parent
                    if dns.normalized(parent) != dns.normalized(_parent(old_dn))
                    else None,
                )
        except (ldap_errors.LDAPException, InvalidValue):
            self._undo(connection, old_dn, undo)
            raise
        location.refs.forget(old_dn)
        location.refs.forget(new_dn)  # a reference to it read before found nothing
        if not same_entry:
            # A DN that changed only in case still matches every reference (DNs compare
            # without case); following it would remove and add one same member.
            self._follow_rename(connection, location, old_dn, new_dn, entry)
        return new_dn

    def _settle_references(
        self,
        connection: ldap3.Connection,
        location: Location,
        entry_dn: str,
        values: Mapping[str, Any],
    ) -> bool:
        """Put right the references just written (a manager's DN) whose target was renamed
        or deleted after it was looked up and before the write, as `_settle_members` does
        for members: a value naming no entry goes, and the target, when it still exists,
        is named by its new DN. A value another writer put there since is left alone.
        Whether anything was written again."""
        settled = False
        for name, value in values.items():
            described = location.spec.field_named(name)
            if described is None or described.reference is None or value in (None, "", []):
                continue
            connection.search(entry_dn, "(objectClass=*)", ldap3.BASE, attributes=[name])
            held = [str(each) for each in entries_of(connection)[0].values(name)]
            dangling = [dn for dn in held if not _exists(connection, dn)]
            if not dangling:
                continue
            kept = {dns.normalized(dn) for dn in held} - set(map(dns.normalized, dangling))
            reference = described.reference
            targets = (self._dn_of(connection, reference, str(each)) for each in _listed(value))
            renamed = [dn for dn in targets if dn is not None and dns.normalized(dn) not in kept]
            changes = [(ldap3.MODIFY_DELETE, dangling)]
            if renamed:
                changes.append((ldap3.MODIFY_ADD, renamed))
            log.info("references to entries renamed or deleted meanwhile put right")
            with contextlib.suppress(
                ldap_errors.LDAPNoSuchAttributeResult, ldap_errors.LDAPAttributeOrValueExistsResult
            ):  # another writer put it right, or wrote another value, first
                connection.modify(entry_dn, {name: changes})
                settled = True
        return settled

    def _undo(
        self,
        connection: ldap3.Connection,
        entry_dn: str,
        undo: dict[str, list[tuple[str, list[Any]]]],
    ) -> None:
        """Restore the attributes a failed rename came after, or say what was left written."""
        if not undo:
            return
        try:
            connection.modify(entry_dn, undo)
        except ldap_errors.LDAPException:
            log.error("could not undo the attribute changes of %s after a failed rename", entry_dn)
            raise PartiallyWritten(
                "the entry could not be renamed or moved, and its attributes, already "
                "changed, could not be restored",
                written=tuple(sorted(undo)),
            ) from None

    def _follow_rename(
        self,
        connection: ldap3.Connection,
        location: Location,
        old_dn: str,
        new_dn: str,
        entry: Entry,
    ) -> None:
        """References to the old DN follow it: group members and managers.

        A server with referential integrity (OpenLDAP's memberof refint, AD) has already
        done it, and then the searches below find nothing to change.
        """
        if location.kind is not Kind.USERS:
            return
        if self._member_value_field() is None:
            self._replace_member_value(connection, old_dn, new_dn)
        for described in location.spec.fields:
            if described.reference is not Kind.USERS:
                continue
            term = f"({described.name}={escape(old_dn)})"
            follow = functools.partial(_replace_value, connection, described.name, new_dn)
            self._on_each_found(connection, location, term, follow)

    def _on_each_found(
        self,
        connection: ldap3.Connection,
        location: Location,
        term: str,
        change: Callable[[str], object],
    ) -> None:
        """`change(dn)` on every entry of `location` matching `term`, also one that another
        writer renames or deletes meanwhile: a deleted one has nothing left to change, and
        a renamed one is found again where it is now (a directory has no transactions; a
        user's rename must not fail, nor leave references behind, for another's)."""
        for _ in range(MOVED_ATTEMPTS):
            moved = False
            for base in location.bases:
                for entry in list(search_all(connection, base, term, ["1.1"])):
                    try:
                        change(entry.dn)
                    except ldap_errors.LDAPNoSuchObjectResult:
                        moved = True
            if not moved:
                return
        raise Unavailable("the entries to change kept moving under concurrent writes; retry")

    def _follow_member_value(
        self,
        connection: ldap3.Connection,
        location: Location,
        user: Entry,
        changes: Mapping[str, Any],
    ) -> None:
        """Groups whose members are a user attribute's values (posix groups' memberUid)
        follow when it changes: a renamed user keeps its groups. memberUid compares with
        case (RFC 2307), so a change of case is followed too."""
        field = self._member_value_field()
        if location.kind is not Kind.USERS or field is None or field not in changes:
            return
        old, new = user.first(field), changes[field]
        if old is not None and new is not None and str(old) != str(new):
            self._replace_member_value(connection, str(old), str(new))

    def _replace_member_value(self, connection: ldap3.Connection, old: str, new: str) -> None:
        """Every group holding the member value `old` holds `new` instead.

        One modify deletes `old`, then adds `new`: when the directory reads the two as one
        value (`rev ` and `rev`: insignificant spaces, RFC 4518 §2.6.1), the value is
        written again rather than lost, which a check of `new` before the write could not
        tell from a group holding both. A group that already holds `new` besides `old`
        loses `old` alone; one whose `old` went meanwhile (OpenLDAP's memberof refint
        follows renames itself) is given `new` if it lacks it.
        """
        if self._groups is None:
            return
        attribute = self._member_attribute()
        term = f"({attribute}={escape(old)})"

        def swap(group_dn: str) -> None:
            values = [(ldap3.MODIFY_DELETE, [old]), (ldap3.MODIFY_ADD, [new])]
            try:
                connection.modify(group_dn, {attribute: values})
            except ldap_errors.LDAPAttributeOrValueExistsResult:
                self._modify_members(connection, group_dn, added=[], removed=[old])
            except ldap_errors.LDAPNoSuchAttributeResult:
                self._modify_members(connection, group_dn, added=[new], removed=[])

        self._on_each_found(connection, self._groups, term, swap)

    def _dependents(
        self, connection: ldap3.Connection, kind: Kind, user: Entry
    ) -> list[_Dependent]:
        """The entries a user's deletion changes: its groups (it leaves them) and those it
        manages (their manager is emptied), with their records as they are before, when a
        journal is to be told of each change (a webhook receiver keeps a manager too)."""
        if kind is not Kind.USERS:
            return []
        located = self._group_terms(user)
        for described in self._users.spec.fields:
            if described.reference is Kind.USERS:
                term = f"({described.name}={escape(user.dn)})"
                located.append((self._users, term, described.name))
        return self._found_dependents(connection, user, located)

    def _groups_holding(self, connection: ldap3.Connection, user: Entry) -> list[_Dependent]:
        """The groups the user is in now, as `_dependents` finds them."""
        return self._found_dependents(connection, user, self._group_terms(user))

    def _group_terms(self, user: Entry) -> list[tuple[Location, str, str | None]]:
        """Where the user's groups are found, and by what filter (for `_found_dependents`)."""
        if self._groups is None:
            return []
        value = self._member_value_of(user)
        return [(self._groups, f"({self._member_attribute()}={escape(value)})", None)]

    def _found_dependents(
        self,
        connection: ldap3.Connection,
        user: Entry,
        located: list[tuple[Location, str, str | None]],  # where, filter, field to empty
    ) -> list[_Dependent]:
        """The entries each filter finds where it says, the user itself aside, with their
        records before, when a journal is to be told."""
        told = self._journal is not None
        found: list[_Dependent] = []
        for location, term, field in located:
            attributes = location.attributes() if told else ["1.1"]
            for base in location.bases:
                for entry in list(search_all(connection, base, term, attributes)):
                    if dns.normalized(entry.dn) == dns.normalized(user.dn):
                        continue  # a user that managed itself goes with it
                    before = None
                    if told:
                        before = self._records(connection, location, [entry], False, False)[0]
                    found.append(_Dependent(location, entry.dn, field, before))
        return found

    def _forget_user(
        self,
        connection: ldap3.Connection,
        user: Entry,
        user_id: str,
        dependents: list[_Dependent],
    ) -> list[Change]:
        """A deleted user leaves its groups and stops being anyone's manager; the changes,
        for the journal."""
        changes: list[Change] = []
        for dependent in dependents:
            if dependent.field is None:
                changes += _told(self._leave_group(connection, user, user_id, dependent))
                continue
            try:
                _replace_value(connection, dependent.field, None, dependent.dn)
            except ldap_errors.LDAPNoSuchObjectResult:
                # Deleted since it was found (nothing left to change), or renamed, and then
                # found again where it is now (_forget_late) once the user is gone.
                continue
            changes += _told([_Left(dependent.dn, self._change_of(connection, dependent))])
        return changes

    def _leave_group(
        self, connection: ldap3.Connection, user: Entry, user_id: str, dependent: _Dependent
    ) -> list[_Left]:
        """The user leaves one group by the service's own modify: the group as left, or
        nothing when another writer took the user out first (that writer tells it), or
        deleted or renamed the group (found again by `_forget_late`)."""
        value = self._member_value_of(user)
        try:
            _, removed = self._modify_members(connection, dependent.dn, added=[], removed=[value])
        except ldap_errors.LDAPNoSuchObjectResult:
            return []
        if not removed:
            return []
        left = frozenset({user_id})
        return [_Left(dependent.dn, self._change_of(connection, dependent, left))]

    def _change_of(
        self,
        connection: ldap3.Connection,
        dependent: _Dependent,
        left: frozenset[str] = frozenset(),
    ) -> Change | None:
        """A dependent's change, its record read again, when a journal is told (`before`)."""
        if dependent.before is None:
            return None
        location = dependent.location
        entry = self._read_dn(connection, location, dependent.dn, False)
        after = self._records(connection, location, [entry], False, False)[0]
        return Change(location.kind, after.id, dependent.before, after, frozenset(), left)

    def _leave_groups(
        self,
        connection: ldap3.Connection,
        user: Entry,
        user_id: str,
        dependents: list[_Dependent],
        left: list[_Left],
    ) -> list[_Dependent]:
        """Before its entry is deleted, the user leaves its groups by the service's own
        modifies, which give each group a new version (entryCSN). Left to the delete,
        slapd's memberof overlay (memberof-refint) takes the user out by an internal
        write that keeps the group's entryCSN and modifyTimestamp: the group changed and
        kept its ETag, and an If-Match with the old one passed.

        The groups are looked for again until none holds the user: one another writer
        adds the user to meanwhile is left too, and so is one it adds the user back to
        after this service took it out (else refint took it out, keeping the old ETag).
        The groups the user left by this service's modifies are added to `left` as they
        are; returns the dependents with the groups found later."""
        found = list(dependents)
        holding = [each for each in found if each.field is None]
        for _ in range(MOVED_ATTEMPTS):
            if not holding:
                return found
            for group in holding:
                left += self._leave_group(connection, user, user_id, group)
            holding = self._groups_holding(connection, user)
            known = {dns.normalized(each.dn) for each in found}
            found += [each for each in holding if dns.normalized(each.dn) not in known]
        raise Unavailable("the user kept joining groups while being deleted; retry")

    def _leave_and_delete(
        self,
        connection: ldap3.Connection,
        user: Entry,
        user_id: str,
        dependents: list[_Dependent],
        stuck: list[Change],
    ) -> tuple[list[_Dependent], list[_Left]]:
        """The user leaves its groups (`_leave_groups`), then its entry is deleted. When
        either fails, the user, still there, is put back into the groups it left, and the
        error raised. Those it cannot be put back into (the group renamed or deleted
        meanwhile, the user deleted by another writer, the connection lost) are logged,
        and their changes go to `stuck` for the journal: they were made. Returns the
        dependents with the groups found later, and the groups left."""
        left: list[_Left] = []
        try:
            found = self._leave_groups(connection, user, user_id, dependents, left)
            connection.delete(user.dn)
        except Exception:
            missed = self._rejoin_groups(connection, user_id, left)
            if missed:
                log.error(
                    "the deletion of %s failed, and it could not be put back into %d of "
                    "the groups it had left",
                    user.dn,
                    len(missed),
                )
            stuck += _told(missed)
            raise
        return found, left

    def _rejoin_groups(
        self, connection: ldap3.Connection, user_id: str, left: list[_Left]
    ) -> list[_Left]:
        """The user joins again the groups it left (by its value now: another writer may
        have renamed it meanwhile); the ones it could not join. A value another writer
        put back already, and the placeholder, are handled by `_modify_members`."""
        rejoined: set[str] = set()  # their DNs
        try:
            user = self._find_user(connection, user_id) if left else None
            if user is None:
                return left  # deleted by another writer: its groups lost it for good
            value = self._member_value_of(user)
            for group in left:
                with contextlib.suppress(ldap_errors.LDAPNoSuchObjectResult):
                    self._modify_members(connection, group.dn, added=[value], removed=[])
                    rejoined.add(group.dn)
        except (ldap_errors.LDAPException, ConnectorError):
            pass  # the connection lost, as a rule: what is not rejoined yet stays out
        return [group for group in left if group.dn not in rejoined]

    def _forget_late(
        self,
        connection: ldap3.Connection,
        kind: Kind,
        user: Entry,
        user_id: str,
        dependents: list[_Dependent],
    ) -> list[Change]:
        """`_forget_user` for the references to `user` written after `dependents` were
        found, while it was being removed (a member added in parallel): looked for again
        once it is gone. One written later still is put right by its own writer
        (`_settle_members`), which then finds no user."""
        seen = {(dns.normalized(each.dn), each.field) for each in dependents}
        late = [
            each
            for each in self._dependents(connection, kind, user)
            if (dns.normalized(each.dn), each.field) not in seen
        ]
        return self._forget_user(connection, user, user_id, late) if late else []

    # --- Members ----------------------------------------------------------------------

    def _empty_group(self, connection: ldap3.Connection, group_dn: str) -> None:
        """Every member leaves the group (the placeholder stays where one is needed).

        An archived group kept its members before: whoever searches the whole tree for
        `member=<user>`, or reads memberOf (which the memberof overlay moved along with
        the group), found the user still in a group the identity provider had deleted.
        """
        if self.schema.memberships is None or self.schema.memberships.field is None:
            return
        placeholder = self._placeholder()
        kept = [placeholder] if placeholder else []
        connection.modify(group_dn, {self._member_attribute(): [(ldap3.MODIFY_REPLACE, kept)]})

    def _member_attribute(self) -> str:
        members = self.schema.memberships
        if members is None or members.field is None:
            raise InvalidValue("this service stores no memberships", field="members")
        return members.field

    def _reads_member_values(self) -> bool:
        """Whether a group's members are read from its member attribute; not when the
        server keeps memberOf, whose search finds them without the group's values (a
        group of 50,000 would otherwise send every DN, only to be searched again)."""
        return self._member_value_field() is not None or not self._users.member_of

    def _member_value_field(self) -> str | None:
        members = self.schema.memberships
        return members.member_value if members else None

    def _placeholder(self) -> str | None:
        members = self.schema.memberships
        if members is None or not members.placeholder:
            return None
        return self._dn(members.placeholder) if "=" in members.placeholder else members.placeholder

    def _user_member_attributes(self) -> list[str]:
        field = self._member_value_field()
        return [self._users.spec.key] + ([field] if field else [])

    def _member_value_of(self, user: Entry) -> str:
        """What a group's member attribute holds for this user: its DN or a field's value."""
        field = self._member_value_field()
        if field is None:
            return user.dn
        value = user.first(field)
        if value is None:
            raise InvalidValue(f"the user has no {field}, which membership needs", field="members")
        return str(value)

    def _member_entries(
        self, connection: ldap3.Connection, ids: Iterable[str], *, required: bool
    ) -> dict[str, str]:
        """Member attribute value -> SCIM id, for the users `ids` names.

        With `required`, an id that names no user is InvalidValue; otherwise it is left
        out (a user that is not there cannot be removed either).
        """
        wanted = set(ids)
        if not wanted:
            return {}
        found = self._users.find_many(connection, wanted, self._user_member_attributes())
        if required and set(found) != {id.lower() for id in wanted}:
            raise no_such_members(id for id in wanted if id.lower() not in found)
        return {self._member_value_of(entry): id for id, entry in found.items()}

    def _find_for_members(
        self,
        connection: ldap3.Connection,
        location: Location,
        id: str,
        members: MemberChanges | None,
    ) -> tuple[Entry, bool | None]:
        """The entry, and, when members are to be added to a group that may hold the
        placeholder, whether it does (else None): found by one search asking for the
        group without it, which answers what a compare would cost another round trip
        for (one that reads a group of 50,000 values again). Only a group that holds it
        (one with no members yet) takes a second search."""
        attributes = location.attributes()
        placeholder = self._placeholder()
        adds = members is not None and bool(members.added or members.replace)
        if location.kind is not Kind.GROUPS or not placeholder or not adds:
            return location.find(connection, id, attributes), None
        absent = f"(!({self._member_attribute()}={escape(placeholder)}))"
        try:
            return location.find(connection, id, attributes, where=absent), False
        except NotFound:
            return location.find(connection, id, attributes), True

    def _member_targets(
        self, connection: ldap3.Connection, changes: MemberChanges
    ) -> _MemberTargets:
        """The member values the changes name; InvalidValue when one to add names no user."""
        if changes.replace is not None:
            return _MemberTargets(
                self._member_entries(connection, changes.replace, required=True), {}, {}
            )
        return _MemberTargets(
            None,
            joining=self._member_entries(connection, changes.added, required=True),
            leaving=self._member_entries(connection, changes.removed, required=False),
        )

    def _change_members(
        self,
        connection: ldap3.Connection,
        group_dn: str,
        targets: _MemberTargets,
        read_back: Control | None,
        placeholder_held: bool | None,
        hold: _WriteHold,
    ) -> tuple[set[str], set[str], Entry | None]:
        """Apply member changes; the ids of the users that joined, and of those that left,
        and the group as the modify left it when `read_back` (a Post-Read control) went
        with it and nothing was written after (None otherwise). `placeholder_held`: as
        `_find_for_members` found the group (None: not known). `hold` is told once the
        changes are written, and holds a correction after them again."""
        attribute = self._member_attribute()
        wanted = targets.replace
        if wanted is not None:
            # The one case that reads every member: the client sent the whole set.
            connection.search(group_dn, "(objectClass=*)", ldap3.BASE, attributes=[attribute])
            current = {str(v) for v in entries_of(connection)[0].values(attribute)}
            placeholder = self._placeholder()
            current_norm = {self._comparable(v): v for v in current if v != placeholder}
            wanted_norm = {self._comparable(v): v for v in wanted}
            added = [wanted_norm[k] for k in wanted_norm.keys() - current_norm.keys()]
            removed = [current_norm[k] for k in current_norm.keys() - wanted_norm.keys()]
            joining = wanted
            if added or removed:
                self._replace_members(connection, group_dn, list(wanted_norm.values()), read_back)
        else:
            added, removed, joining = list(targets.joining), list(targets.leaving), targets.joining
            added, removed = self._modify_members(
                connection,
                group_dn,
                added=added,
                removed=removed,
                read_back=read_back,
                placeholder_held=placeholder_held,
            )
        fresh = _post_read_entry(connection, group_dn) if read_back is not None else None
        written = {value: joining[value] for value in added}
        hold.written()
        gone, settled = self._settle_members(connection, group_dn, written, hold.again)
        if wanted is not None:
            left = self._ids_of(connection, removed)
        else:
            left = {targets.leaving[value] for value in removed}
        return set(written.values()), left | gone, None if settled else fresh

    def _replace_members(
        self,
        connection: ldap3.Connection,
        group_dn: str,
        values: list[str],
        read_back: Control | None,
    ) -> None:
        """The whole member set in one replace (the client sent it whole: PUT, or a PATCH
        replacing `members`), the placeholder standing for none. Atomic in the directory:
        of two replaces at once, the group ends with one of the two sets. Sent as adds
        and deletes computed from a read, both went through (the second's deletes of what
        the first had removed were taken as already done) and the group held the union,
        keeping members a replace was to remove. slapd's memberof overlay follows a
        replace as it follows adds and deletes."""
        placeholder = self._placeholder()
        stored = values or ([placeholder] if placeholder else [])
        connection.modify(
            group_dn,
            {self._member_attribute(): [(ldap3.MODIFY_REPLACE, stored)]},
            controls=[read_back] if read_back is not None else None,
        )

    def _settle_members(
        self,
        connection: ldap3.Connection,
        group_dn: str,
        written: dict[str, str],
        held: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> tuple[set[str], bool]:
        """Put right the member values just written (value -> user id) whose user was
        renamed or deleted after it was looked up and before the modify: a directory has
        no transactions, and the rename or the deletion, which follows or removes the
        values a group holds, came too early to see this one. A renamed user's value
        becomes its new one; a deleted user's goes, as the deletion would have taken it
        had it come after. Returns the ids of the deleted users (they joined, then left),
        and whether anything was written (within `held`).
        """
        if not written:
            return set(), False
        now = self._member_entries(connection, written.values(), required=False)
        current = {id.lower(): value for value, id in now.items()}
        stale: list[str] = []
        renamed: list[str] = []
        gone: set[str] = set()
        for value, id in written.items():
            present = current.get(id.lower())
            if present is not None and self._comparable(present) == self._comparable(value):
                continue
            stale.append(value)
            if present is None:
                gone.add(id)
            else:
                renamed.append(present)
        if stale:
            log.info("member values of users renamed or deleted meanwhile put right")
            with held():
                self._modify_members(connection, group_dn, added=renamed, removed=stale)
        return gone, bool(stale)

    def _ids_of(self, connection: ldap3.Connection, values: list[str]) -> set[str]:
        """The SCIM ids of the users member values name (DNs, or the member_value field)."""
        field = self._member_value_field()
        if field is None:
            refs = [self._users.resolve(connection, value) for value in values]
            return {ref.id for ref in refs if ref is not None}
        found: set[str] = set()
        for start in range(0, len(values), 200):
            term = _any([f"({field}={escape(value)})" for value in values[start : start + 200]])
            for base in self._users.bases:
                found |= {
                    self._users.id_of(entry)
                    for entry in search_all(connection, base, term, [self._users.spec.key])
                }
        return found

    def _comparable(self, value: str) -> str:
        return value.lower() if self._member_value_field() else dns.normalized(value)

    def _modify_members(
        self,
        connection: ldap3.Connection,
        group_dn: str,
        *,
        added: list[str],
        removed: list[str],
        read_back: Control | None = None,
        placeholder_held: bool | None = None,
    ) -> tuple[list[str], list[str]]:
        """One modify with exactly the changed values; the placeholder keeps a group valid.

        Nothing of the other members is read: a value already there (or already gone) is
        found by a compare of that value alone, only when the modify was refused for it.
        When members are added, the placeholder goes with the first of them: it is looked
        for by a compare first, unless `placeholder_held` tells already (the group was
        found by a search that said, `_find_for_members`), and a modify refused for it
        (another writer took it away meanwhile) is sent again without it. Not by an
        Assertion control (RFC 4528) on the adds instead: slapd's memberof overlay, now
        and then, left memberOf unwritten on a member so added while another writer
        removed the placeholder (a user in the group without the group in its memberOf,
        which adding it again does not mend). Returns the values really added and removed
        (the placeholder aside).
        """
        if not added and not removed:
            return [], []
        attribute = self._member_attribute()
        placeholder = self._placeholder() or ""  # "": the groups need none
        # The placeholder goes with the first members.
        extra: list[str] = []
        if placeholder and added:
            if placeholder_held is None:
                placeholder_held = self._holds(connection, group_dn, placeholder)
            extra = [placeholder] if placeholder_held else []
        try:
            for _ in range(MEMBER_WRITE_ATTEMPTS):
                controls = [read_back] if read_back is not None else []
                try:
                    self._send_members(connection, group_dn, added, [*removed, *extra], controls)
                    return added, removed
                except (
                    ldap_errors.LDAPAttributeOrValueExistsResult,
                    ldap_errors.LDAPNoSuchAttributeResult,
                ):
                    # Another writer came first: write what is still to be written.
                    added = [v for v in added if not self._holds(connection, group_dn, v)]
                    removed = [v for v in removed if self._holds(connection, group_dn, v)]
                    if not added or (extra and not self._holds(connection, group_dn, placeholder)):
                        extra = []
                    if not added and not removed:
                        return [], []
        except ldap_errors.LDAPObjectClassViolationResult:
            if not placeholder or added:
                raise
            # The last member left a group that must have one: the placeholder stays.
            changes = [(ldap3.MODIFY_ADD, [placeholder]), (ldap3.MODIFY_DELETE, removed)]
            try:
                connection.modify(group_dn, {attribute: changes})
            except (
                ldap_errors.LDAPAttributeOrValueExistsResult,
                ldap_errors.LDAPNoSuchAttributeResult,
            ):
                # Another writer emptied the group first (a deletion's cleanup and the
                # settling of a member added meanwhile): what it left is removed now.
                still = [v for v in removed if self._holds(connection, group_dn, v)]
                return self._modify_members(connection, group_dn, added=[], removed=still)
            return added, removed
        raise Unavailable("the group kept changing under concurrent writes; retry")

    def _send_members(
        self,
        connection: ldap3.Connection,
        group_dn: str,
        added: list[str],
        removed: list[str],
        controls: list[Control],
    ) -> None:
        changes: list[tuple[str, list[Any]]] = []
        if added:
            changes.append((ldap3.MODIFY_ADD, added))
        if removed:
            changes.append((ldap3.MODIFY_DELETE, removed))
        if changes:
            connection.modify(
                group_dn, {self._member_attribute(): changes}, controls=controls or None
            )

    def _still_at(self, location: Location, entry: Entry) -> Control | None:
        """An If-Match, checked by the directory within the write itself (RFC 4528): the
        entry's version field (entryCSN) must still hold the value read. Not for the
        member modify nor the modify DN: the overlays' own writes they cause (memberof,
        refint) inherit the assertion and would fail it on the other entries."""
        version = location.stored_version(entry)
        if not self._assertion or version is None or location.spec.version is None:
            return None
        return _asserting(f"({location.spec.version}={escape(str(version))})")

    def _holds(self, connection: ldap3.Connection, group_dn: str, value: str) -> bool:
        """Whether the group's member attribute holds `value` (an LDAP compare)."""
        try:
            return bool(connection.compare(group_dn, self._member_attribute(), value))
        except ldap_errors.LDAPNoSuchAttributeResult:
            return False  # the group holds no value at all


# --- Helpers ----------------------------------------------------------------------------


ANY = "(objectClass=*)"

MEMBER_OF_SAMPLE = 50
"""Users looked at, at most, for one in a group whose memberOf can be compared."""

LONGEST_SURE_NAME = 240
"""Bytes of an entry's name (`uid=...`) that OpenLDAP's back-mdb surely stores: it keeps
the name twice in a key of at most 511 bytes, and refuses a longer one with a bare
`other` (80), which alone would read as a server in trouble (503, retried for ever)."""


@contextmanager
def _storable_name(dn: str, field: str) -> Iterator[None]:
    """A name the directory could not store is said to be one: 400 naming the field."""
    try:
        yield
    except ldap_errors.LDAPOtherResult:
        rdn, _ = dns.split_first(dn)
        if len(rdn.encode()) <= LONGEST_SURE_NAME:
            raise
        raise InvalidValue("too long for an entry's name in the directory", field=field) from None


MEMBER_WRITE_ATTEMPTS = 4
"""Member modifies sent for one change, each after another writer's change refused the
last (a value it added or removed first, the placeholder put back or taken away)."""


def _replace_value(
    connection: ldap3.Connection, attribute: str, value: str | None, entry_dn: str
) -> None:
    """The entry's `attribute` holds `value` alone from now on (none when None)."""
    values = [] if value is None else [value]
    connection.modify(entry_dn, {attribute: [(ldap3.MODIFY_REPLACE, values)]})


MOVED_ATTEMPTS = 8
"""Finds and writes of one entry that another writer renamed between the two."""


def _asserting(term: str) -> Control:
    """The Assertion control (RFC 4528, critical): the write is made only if the entry
    matches the filter `term`, else it fails with assertionFailed."""
    return ASSERTION, True, ber.encode_filter(term)


_REFUSED_TO_ANONYMOUS = (
    ldap_errors.LDAPStrongerAuthRequiredResult,
    ldap_errors.LDAPInsufficientAccessRightsResult,
    ldap_errors.LDAPConfidentialityRequiredResult,
    ldap_errors.LDAPInappropriateAuthenticationResult,
    ldap_errors.LDAPUnwillingToPerformResult,
)


def _anonymous_write_refused(connection: ldap3.Connection, entry_dn: str) -> str | None:
    """Why the directory refuses a write from this (anonymous) connection, or None when
    it does not say. The write asserts that the entry holds no object class, which no
    entry matches: it is never made. slapd refuses an anonymous write before it reads
    the assertion (`modifications require authentication`, strongerAuthRequired)."""
    try:
        connection.modify(
            entry_dn,
            {"objectClass": [(ldap3.MODIFY_ADD, ["top"])]},  # harmless even if it were made
            controls=[_asserting("(!(objectClass=*))")],
        )
    except _REFUSED_TO_ANONYMOUS as refused:
        return str(refused.description)
    except ldap_errors.LDAPOperationResult:  # assertionFailed: it got past authentication
        return None
    return None


def schema_problems(schema: BackendSchema) -> list[str]:
    """What a mapping lacks to describe a directory, one line each."""
    problems: list[str] = []
    for name, spec in (("users", schema.users), ("groups", schema.groups)):
        if spec is not None and spec.directory is None:
            problems.append(
                f"the mapping's [{name}] names no classes and rdn (not a directory mapping)"
            )
    members = schema.memberships
    if schema.groups is not None and (members is None or members.field is None):
        problems.append("the mapping's [groups.members] must name the member attribute (field)")
    return problems


@functools.lru_cache(maxsize=64)
def _post_read_of(attributes: tuple[str, ...]) -> Control:
    """The Post-Read control asking for `attributes` (RFC 4527), encoded once.

    ldap3 builds and BER-encodes the control's value anew for each operation, which cost
    a tenth of a create; the value depends on the attributes only. As a (type,
    criticality, value) triple, ldap3 sends the value as it is.
    """
    control = post_read_control(list(attributes))
    return POST_READ, False, bytes(control["controlValue"])


def _post_read_entry(connection: ldap3.Connection, entry_dn: str) -> Entry | None:
    """The entry a write's Post-Read control returned (RFC 4527), None without one."""
    control = ((connection.result or {}).get("controls") or {}).get(POST_READ)
    if not control:
        return None
    read = control["value"]["result"]
    return Entry(
        entry_dn, {name.lower(): [text_of(v) for v in values] for name, values in read.items()}
    )


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _any(terms: list[str]) -> str:
    return terms[0] if len(terms) == 1 else f"(|{''.join(terms)})"


def _exists(connection: ldap3.Connection, entry_dn: str) -> bool:
    try:
        connection.search(entry_dn, "(objectClass=*)", ldap3.BASE, attributes=["1.1"])
    except ldap_errors.LDAPNoSuchObjectResult:
        return False
    return bool(connection.response)


def _containers(location: Location) -> list[tuple[str, str]]:
    """(mapping key, value relative to base_dn) of each container a type's entries are
    in: `object`, and `disabled_object` when disabled entries move."""
    found = [("object", location.spec.object)]
    directory = location.spec.directory
    if directory is not None and directory.disabled_object is not None:
        found.append(("disabled_object", directory.disabled_object))
    return found


def _parent(entry_dn: str) -> str:
    return dns.split_first(entry_dn)[1]


def _sort_key(location: Location, sort: Sort) -> Callable[[Entry], tuple[Any, ...]]:
    """Sort by the field, then by id (stable); entries without a value come last when
    ascending and first when descending (RFC 7644 §3.4.2.3). A mapped field sorts by
    the rank of the SCIM value its stored value reads as (Sort.ranks), compared without
    case as a directory compares it (nsAccountLock: TRUE, true)."""
    ranks = {str(stored).lower(): rank for stored, rank in sort.ranks}

    def value(entry: Entry) -> Any:
        if sort.field == ENABLED_BY_LOCATION:
            return location.is_enabled(entry.dn)
        found = entry.first(sort.field)
        if sort.empty is not None and found == sort.empty:
            found = None  # the stand-in written for no value
        if sort.ranks:
            if found is None:
                return sort.absent_rank
            return ranks.get(str(found).lower(), sort.unlisted_rank)
        if found is None:
            return None
        if isinstance(found, str) and not sort.case_exact:
            return found.lower()
        return found

    absent, present = (0, 1) if sort.descending else (1, 0)

    def key(entry: Entry) -> tuple[Any, ...]:
        found = value(entry)
        if found is None:
            return (absent, None, location.id_of(entry))
        ordered = _Reversed(found) if sort.descending else found
        return (present, ordered, location.id_of(entry))

    return key


class _Reversed:
    """Inverts the order of a value, for a descending sort inside a key tuple."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and bool(self.value == other.value)

    __hash__ = None  # type: ignore[assignment]


def _decided(condition: Condition, enabled: bool) -> Condition:
    """The condition with terms on the location field replaced by what `enabled` makes them."""
    match condition:
        case Compare(field=field) if field == ENABLED_BY_LOCATION:
            wanted = condition.value is True or str(condition.value).lower() == "true"
            equal = wanted == enabled
            return Constant(equal if condition.op is Op.EQ else not equal)
        case Present(field=field) if field == ENABLED_BY_LOCATION:
            return Constant(True)
        case And():
            return And(tuple(_decided(term, enabled) for term in condition.terms))
        case Or():
            return Or(tuple(_decided(term, enabled) for term in condition.terms))
        case Not():
            return Not(_decided(condition.term, enabled))
        case _:
            return condition
