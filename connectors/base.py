"""The one async interface every connector implements, and the values that cross it.

A connector never sees HTTP and never SCIM JSON. It receives backend field values that
the mapping produced, conditions that the mapping translated from a SCIM filter, and
changes rather than whole resources, so that adding one member to a group of 50,000
sends one value to the backend.

Identifiers crossing this interface are always SCIM ids (strings). The connector alone
knows how a SCIM id relates to its backend key (a primary key rendered as text, an
entryUUID whose entry lives at some DN), so it translates ids to keys on the way in and
keys to ids on the way out, for record ids, for reference fields such as a manager, and
for group members.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Kind(StrEnum):
    """The resource types a connector stores."""

    USERS = "users"
    GROUPS = "groups"

    @property
    def resource_type(self) -> str:
        """The resource type's name (RFC 7643 §3): User, Group."""
        return "User" if self is Kind.USERS else "Group"


# --- Errors -------------------------------------------------------------------------
#
# The small family a connector raises. Messages are safe to show to a client: they name
# the SCIM-facing field or id at most, never SQL, LDAP text, DNs of other entries or
# driver messages. Each connector wraps its driver's errors at one place.


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:
        """Copied (and pickled) as it is, whatever its constructor takes: its arguments
        and attributes, without calling it. The LDAP group commit hands each waiting
        request a copy of the error of their shared write; the default copy called the
        constructor with the message alone, which EventLost and PartiallyWritten refuse."""
        return (_restored_error, (type(self), self.args, self.__dict__))


def _restored_error(
    kind: type[ConnectorError], args: tuple[Any, ...], state: dict[str, Any]
) -> ConnectorError:
    error = Exception.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    return error


class NotFound(ConnectorError):
    """The record does not exist."""


class Conflict(ConnectorError):
    """A unique value is already taken (RFC 7644 §3.3: 409 uniqueness)."""


class PreconditionFailed(ConnectorError):
    """The record's version is not the one the caller expected (If-Match)."""


class Unavailable(ConnectorError):
    """The backend cannot be reached or is busy; the caller may retry later."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidValue(ConnectorError):
    """The backend refuses a value: wrong type, too long, unknown reference."""


def no_such_members(ids: Iterable[str]) -> InvalidValue:
    """The error of member ids that name no user, naming them (the first few, each cut
    short), so that an admin whose identity provider sent many can tell which."""
    named = sorted(ids)
    shown = ", ".join(f'"{id[:64]}"' for id in named[:_MEMBERS_NAMED])
    more = f" and {len(named) - _MEMBERS_NAMED} more" if len(named) > _MEMBERS_NAMED else ""
    which = "this member id" if len(named) == 1 else "these member ids"
    return InvalidValue(f"no user has {which}: {shown}{more}", field="members")


_MEMBERS_NAMED = 5


class Unsortable(InvalidValue):
    """The backend cannot order by this field as the client reads it (a directory holds
    a reference as a DN, not as the id the client sees)."""


class Rejected(ConnectorError):
    """A system the change must be agreed with refused it (a synchronous webhook receiver).

    The change was not made.
    """


class EventLost(ConnectorError):
    """The change was made, but its event could not be stored (the events' own database
    failed between the two writes): the request fails, and is not to be sent again."""

    def __init__(self) -> None:
        super().__init__(
            "the change was made, but its event could not be stored; do not send it again"
        )


class PartiallyWritten(ConnectorError):
    """A write made of several backend operations stopped half-way and could not be undone.

    `written` names the fields that were changed nonetheless, so that the client is told
    exactly what the backend now holds.
    """

    def __init__(self, message: str, *, written: tuple[str, ...]) -> None:
        super().__init__(message)
        self.written = written


# --- What the mapping tells the connector about the backend --------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """One backend field (a column, an LDAP attribute) that the mapping reads or writes."""

    name: str
    reference: Kind | None = None
    """When set, the field holds the backend key of a record of that kind (a manager).

    Across this interface its values are SCIM ids; the connector converts them.
    """
    multi_valued: bool = False
    """Whether the backend field holds several values (LDAP); a SQL column never does."""


ENABLED_BY_LOCATION = "@enabled"
"""A virtual boolean field: true while the entry lies outside the disabled container.

Writing false moves the entry there, writing true moves it back (an LDAP modify DN).
"""


@dataclass(frozen=True, slots=True)
class DirectoryObject:
    """How a directory (LDAP) stores the entries of one resource type."""

    classes: tuple[str, ...]
    """The objectClass values written on create."""
    naming_attribute: str
    """The attribute of the RDN (`uid` in `uid=jdoe,ou=people,...`)."""
    naming_field: str
    """The mapped field whose value the RDN takes; a rename follows its changes."""
    disabled_object: str | None = None
    """Where disabled entries live, for the ENABLED_BY_LOCATION strategy."""


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """Where and how one resource type is stored."""

    kind: Kind
    object: str
    """The table (SQL) or the object location (LDAP) holding the records."""
    key: str
    """The field holding the backend key; the SCIM id is derived from it."""
    fields: tuple[Field, ...]
    """Every mapped field, the key excluded."""
    unique: tuple[str, ...] = ()
    """Fields whose values must be unique, compared case-insensitively (userName)."""
    display: str | None = None
    """The field shown as `display` where another resource refers to this one."""
    created: str | None = None
    modified: str | None = None
    version: str | None = None
    """A counter field bumped on every write; without it the version is a row hash."""
    constants: Mapping[str, Any] = field(default_factory=dict)
    """Values written to these fields on every create, whatever the client sent."""
    directory: DirectoryObject | None = None
    """LDAP only: object classes, naming attribute and disabled container of the entries."""

    _by_name: Mapping[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Asked for each value of each write: a dict, not a scan of the fields.
        object.__setattr__(self, "_by_name", {each.name: each for each in self.fields})

    def field_named(self, name: str) -> Field | None:
        return self._by_name.get(name)


@dataclass(frozen=True, slots=True)
class MembershipSpec:
    """Where group memberships are stored.

    A SQL backend keeps them in a table of (group key, member key) rows; a directory
    keeps them in a multi-valued attribute of the group entry.
    """

    object: str | None = None
    """SQL: the membership table."""
    group: str | None = None
    """SQL: the column holding the group key."""
    member: str | None = None
    """SQL: the column holding the member (user) key."""
    field: str | None = None
    """LDAP: the group attribute holding member references."""
    member_value: str | None = None
    """LDAP: the user field whose value the member attribute holds (posixGroup's
    memberUid holds a uid); None: it holds the user's DN."""
    placeholder: str | None = None
    """LDAP: a DN kept in a group that would otherwise be empty (groupOfNames requires a
    member); never shown as a member."""
    member_of: str | None = None
    """LDAP: the user attribute the server maintains with the DNs of the user's groups
    (memberOf); None: a user's groups are found by searching the member attribute."""


@dataclass(frozen=True, slots=True)
class BackendSchema:
    """Everything a connector needs to know of the mapping, and nothing of SCIM."""

    users: ObjectSpec
    groups: ObjectSpec | None = None
    memberships: MembershipSpec | None = None

    def spec(self, kind: Kind) -> ObjectSpec:
        spec = self.users if kind is Kind.USERS else self.groups
        if spec is None:
            raise NotFound(f"this service stores no {kind.value}")
        return spec


def mapping_origin(schema: BackendSchema, key: str) -> str:
    """Where in the mapping a start-up problem lies: `<file>: <key>` when the schema was
    loaded from a file (mappings.model.MappedBackend names it), else `<key>`."""
    source = getattr(schema, "source", "")
    return f"{source}: {key}" if source else key


def rule_key(spec: ObjectSpec, field: Field) -> str:
    """The mapping key of the rule that writes `field` (mappings.model.MappedField names
    it), or a description of the field when it was built by hand."""
    return str(getattr(field, "key", "") or f"{spec.kind.value}.attributes ({field.name})")


# --- Records -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberRef:
    """A reference to another record, as a SCIM id with its display value."""

    id: str
    display: str | None = None


@dataclass(slots=True)
class Record:
    """One stored resource, in backend terms."""

    id: str
    """The SCIM id."""
    values: dict[str, Any]
    """Field name to value for every mapped field that holds a value (None omitted).

    Reference fields hold SCIM ids. Multi-valued fields hold lists.
    """
    version: str
    """Opaque; changes whenever the record changes (the ETag is built from it)."""
    created: datetime | None = None
    modified: datetime | None = None
    members: list[MemberRef] | None = None
    """Groups only, when asked for: the member users."""
    groups: list[MemberRef] | None = None
    """Users only, when asked for: the groups the user is a direct member of."""


# --- Conditions: a filter translated into backend fields ----------------------------


class Op(StrEnum):
    """The comparison operators of RFC 7644 §3.4.2.2."""

    EQ = "eq"
    NE = "ne"
    CO = "co"
    SW = "sw"
    EW = "ew"
    GT = "gt"
    GE = "ge"
    LT = "lt"
    LE = "le"


@dataclass(frozen=True, slots=True)
class Compare:
    """`field op value`. A string value compares case-insensitively unless case_exact.

    On a reference field the value is a SCIM id (only eq and ne make sense there).
    A record without a value never matches, except under `ne` (RFC 7644 §3.4.2.2
    leaves this open; we follow the reading that an absent value is "not equal").
    """

    field: str
    op: Op
    value: Any
    case_exact: bool = False


@dataclass(frozen=True, slots=True)
class Present:
    """The field holds a non-empty value."""

    field: str


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    term: Condition


@dataclass(frozen=True, slots=True)
class BitSet:
    """The integer field has every bit of `mask` set (Active Directory's userAccountControl)."""

    field: str
    mask: int


@dataclass(frozen=True, slots=True)
class Constant:
    """A condition the mapping could decide on its own (a constant attribute)."""

    value: bool


@dataclass(frozen=True, slots=True)
class Membership:
    """Filters over memberships.

    On users: the user is a member of a group whose SCIM id `op` value (`groups.value`).
    On groups: the group has a member whose SCIM id `op` value (`members.value`).
    `op` is EQ or NE; `value` None means "has any" (`groups pr`, `members pr`).
    """

    op: Op | None
    value: str | None


Condition = Compare | Present | And | Or | Not | Constant | Membership | BitSet


@dataclass(frozen=True, slots=True)
class Sort:
    field: str
    descending: bool = False
    case_exact: bool = False
    empty: str | None = None
    """The value stored for none (a rule's `empty` stand-in), sorted as none."""
    ranks: tuple[tuple[Any, int], ...] = ()
    """When the stored values stand for other SCIM values (a `map`: "A" for true): each
    stored value with the rank of the SCIM value it reads as, in SCIM order. RFC 7644
    §3.4.2.3 orders by the attribute's value, so the connector orders by the rank, not
    by what is stored ("A" < "T" would put true before false). A stored value not listed
    reads as no value, and sorts as none. Empty: the stored value is the SCIM value."""
    absent_rank: int | None = None
    """With `ranks`: the rank of what no stored value reads as, when it reads as a value
    (`absent = true`: no lock attribute means active); None: it sorts as none."""
    unlisted_rank: int | None = None
    """With `ranks`: the rank of a stored value not listed, when it reads as a value (a
    lock time other than the mapped one still means locked); None: it sorts as none."""


@dataclass(frozen=True, slots=True)
class Query:
    """A search. Results come in a stable order: the sort field, then the key."""

    where: Condition | None = None
    sort: Sort | None = None
    offset: int = 0
    """0-based index of the first record returned."""
    limit: int | None = None
    """At most this many records; 0 asks for the total alone."""
    with_members: bool = False
    with_groups: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    records: list[Record]
    total: int
    """How many records match `where`, regardless of offset and limit."""


@dataclass(frozen=True, slots=True)
class MemberChanges:
    """Changes to a group's members, as SCIM ids of users.

    When `replace` is set, the group's members become exactly that set (the connector
    computes and writes only the difference); otherwise `removed` then `added` apply.
    """

    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    replace: frozenset[str] | None = None

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.replace is not None)


# --- The journal: what every write did -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One write as a connector made it, for its journal (connectors.webhook's outbox).

    `before` is None for a record just created, `after` None for one removed (deleted, or
    moved out of the type's containers). Member ids are those of the users that really
    joined or left the group, not the ones a request merely named.
    """

    kind: Kind
    id: str
    before: Record | None
    after: Record | None
    members_added: frozenset[str] = frozenset()
    members_removed: frozenset[str] = frozenset()


class Journal(Protocol):
    """Told of every write a connector makes.

    A connector with transactions (SQL) calls `record` inside the write's transaction,
    passing its connection: what the journal writes there commits or rolls back with the
    change, and an error from the journal undoes the change. A connector without
    transactions (LDAP) calls it once the write has succeeded, with `transaction` None;
    so does one with transactions for a journal whose `in_transaction` is False (it has a
    database of its own), once the write has committed.
    """

    async def record(self, changes: list[Change], transaction: Any | None) -> None: ...

    async def ready(self, kinds: Collection[Kind]) -> None:
        """Raise Unavailable when changes of `kinds`, told after their write, could not be
        recorded now.

        A connector whose journal records after the write (a directory, or a journal with
        a database of its own) asks before writing, naming the kinds the write may tell
        (a deletion's followers too): with that database down, the change is refused (503)
        rather than made without its event. A kind whose changes make no event needs no
        database, and is never refused.
        """
        ...


class Connector(Protocol):
    """What the SCIM layer asks of a backend. All methods may raise ConnectorError."""

    schema: BackendSchema

    async def open(self) -> None:
        """Connect (create pools). Called once before serving."""

    async def close(self) -> None:
        """Release every connection."""

    async def verify(self, *, archives: Mapping[str, str] | None = None) -> list[str]:
        """Compare the backend with the schema.

        Returns one line per problem (`table "users" has no column "title"`), empty when
        every object and field the mapping names exists. `archives`: the containers
        records are moved into when deleted (on_delete = "move"), by the configuration
        key that names each; a problem with one begins with its key.
        """

    async def create(
        self, kind: Kind, values: Mapping[str, Any], *, members: Collection[str] = ()
    ) -> Record:
        """Insert a record (and, for a group, its members) in one transaction.

        Raises Conflict when a unique field's value is taken, InvalidValue when a
        reference or member id does not exist.
        """

    async def get(
        self, kind: Kind, id: str, *, with_members: bool = False, with_groups: bool = False
    ) -> Record:
        """Read one record; NotFound when there is none with this id."""

    async def search(self, kind: Kind, query: Query) -> Page:
        """Run a query pushed down to the backend."""

    async def update(
        self,
        kind: Kind,
        id: str,
        changes: Mapping[str, Any],
        *,
        members: MemberChanges | None = None,
        if_version: str | None = None,
        with_members: bool = False,
        with_groups: bool = False,
    ) -> Record:
        """Write only the changed fields (None clears one) and member changes, atomically.

        Raises PreconditionFailed when `if_version` is given and differs from the
        stored version. Returns the record as stored afterwards.
        """

    async def delete(self, kind: Kind, id: str, *, if_version: str | None = None) -> None:
        """Remove the record and its memberships."""

    async def archive(
        self,
        kind: Kind,
        id: str,
        *,
        container: str,
        if_version: str | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> None:
        """Take the record out of its groups and move it to `container`, where it is no
        longer one of the type's records (a directory's "deleted users" OU). `changes`
        (the account disabled) are written first, once the move is known possible: a
        move refused (Conflict: the name is taken there) writes nothing at all.

        InvalidValue from a backend that has no containers.
        """


NOT_A_VARIABLE_NAME = (
    "not the name of an environment variable; give the name of the variable that holds "
    "the secret, never the secret itself"
)
"""The message for an `*_env` setting that is not a variable's name. It never quotes the
value: what an admin pastes there by mistake is often the secret itself, and the message
is printed and logged."""

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHELL_REFERENCE = re.compile(r"\$\{?(?P<name>[A-Z_][A-Z0-9_]*)\}?")
"""`$SCIM_BRIDGE_TOKEN` or `${...}`, as a shell would read the variable: a name in capitals
after the `$`, which is a name, not a secret, and may be repeated."""


def variable_name(value: str) -> str:
    """`value`, an `*_env` setting, when it is the name of an environment variable; else
    ValueError saying what to write instead (no shell expands the file)."""
    if _VARIABLE_NAME.fullmatch(value):
        return value
    shell = _SHELL_REFERENCE.fullmatch(value)
    if shell is not None:
        raise ValueError(f"give the variable's name without the shell's $: \"{shell['name']}\"")
    raise ValueError(NOT_A_VARIABLE_NAME)
