"""Where one resource type lives in the directory, and its entries read as records.

Everything here runs in a worker thread on a bound connection (connectors.ldap.pool);
the connector module composes these steps into operations.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors

from connectors.base import (
    ENABLED_BY_LOCATION,
    DirectoryObject,
    Kind,
    MemberRef,
    NotFound,
    ObjectSpec,
    Record,
)
from connectors.forget_board import ForgetBoard, digest
from connectors.ldap import ber
from connectors.ldap import dn as dns
from connectors.ldap.filters import any_of, escape
from connectors.ldap.values import KeyCodec, parse_generalized_time, text_of

PAGE = 1000
"""Entries per page of an internal paged search (below every server's default limit)."""
_OR_CHUNK = 200
"""Terms per OR filter when looking many entries up at once."""


@dataclass(frozen=True)
class Entry:
    """One entry as read: its DN and its attributes (names lower-cased, values as lists)."""

    dn: str
    attributes: dict[str, list[Any]]

    def values(self, name: str) -> list[Any]:
        return self.attributes.get(name.lower(), [])

    def first(self, name: str) -> Any:
        found = self.values(name)
        return found[0] if found else None


def entries_of(connection: ldap3.Connection) -> list[Entry]:
    """The entries of the last search response (references and other messages skipped)."""
    found: list[Entry] = []
    for item in connection.response or []:
        if item.get("type") != "searchResEntry":
            continue
        raw = item.get("raw_attributes") or {}
        attributes = {name.lower(): [text_of(value) for value in raw[name]] for name in raw}
        found.append(Entry(item["dn"], attributes))
    return found


def paged_cookie(connection: ldap3.Connection) -> bytes | None:
    controls = (connection.result or {}).get("controls") or {}
    paged = controls.get("1.2.840.113556.1.4.319") or {}
    cookie = (paged.get("value") or {}).get("cookie")
    return bytes(cookie) if cookie else None


PAGED_RESULTS = "1.2.840.113556.1.4.319"


def search(
    connection: ldap3.Connection,
    base: str,
    search_filter: str,
    scope: str,
    attributes: list[str],
    *,
    size_limit: int = 0,
    paged_size: int | None = None,
    paged_cookie: bytes | None = None,
) -> None:
    """`connection.search(...)`, the request encoded by connectors.ldap.ber.

    ldap3 still takes the answer: it decodes it, sets connection.response and .result,
    and raises as it would have. A filter ber does not encode, or a connection signing
    its messages (SASL), is left to ldap3 altogether.
    """
    scope_number, wanted = _SCOPES[scope], attributes or ["1.1"]
    try:
        request = ber.search_request(
            base, scope_number, search_filter, wanted, size_limit=size_limit
        )
    except ber.FilterSyntax:
        request = None
    if request is None or connection.sasl_mechanism is not None:
        connection.search(
            base,
            search_filter,
            scope,
            attributes=attributes,
            size_limit=size_limit,
            paged_size=paged_size,
            paged_cookie=paged_cookie,
        )
        return
    controls: list[ber.Control] = []
    if paged_size is not None:
        controls.append((PAGED_RESULTS, False, ber.paged_results(paged_size, paged_cookie)))
    # What ldap3 keeps of a request: referrals and auto-range searches repeat it.
    described = {
        "base": base,
        "scope": scope_number,
        "dereferenceAlias": ber.DEREF_ALWAYS,
        "sizeLimit": size_limit,
        "timeLimit": 0,
        "typesOnly": False,
        "filter": search_filter,
        "attributes": wanted,
        "type": "searchRequest",
        "controls": controls or None,
    }
    with connection.connection_lock:
        message_id = _send(connection, request, described, controls)
        connection.strategy.post_send_search(message_id)


_SCOPES = {ldap3.BASE: 0, ldap3.LEVEL: 1, ldap3.SUBTREE: 2}


def add_entry(
    connection: ldap3.Connection,
    entry_dn: str,
    attributes: dict[str, list[Any]],
    controls: Sequence[ber.Control] | None = None,
) -> None:
    """`connection.add(entry_dn, attributes=attributes, controls=controls)`, the request
    encoded by connectors.ldap.ber; ldap3 takes the answer (see `search`).

    Text and bytes values only, with the object classes under `objectClass`; anything
    else is ldap3's to encode, as is a connection that signs its messages.
    """
    classes = attributes.get("objectClass") or []
    plain = (
        bool(classes)
        and all(isinstance(values, list | tuple) for values in attributes.values())
        and all(isinstance(v, str | bytes) for values in attributes.values() for v in values)
    )
    if not plain or connection.sasl_mechanism is not None:
        connection.add(entry_dn, attributes=attributes, controls=controls)
        return
    # ldap3 keeps the first of repeated object classes, in their order.
    unique = {**attributes, "objectClass": list(dict.fromkeys(classes))}
    request = ber.add_request(entry_dn, unique)
    described = {
        "entry": entry_dn,
        "attributes": unique,
        "type": "addRequest",
        "controls": controls,
    }
    with connection.connection_lock:
        message_id = _send(connection, request, described, controls or ())
        connection.strategy.post_send_single_response(message_id)


def _send(
    connection: ldap3.Connection,
    request: bytes,
    described: dict[str, Any],
    controls: Sequence[ber.Control],
) -> int:
    """Send an encoded request as ldap3's strategy would (holding the connection's lock),
    registered under its message id for ldap3 to read the answer; that id."""
    connection.last_error = None
    if not connection.listening:
        connection.last_error = "unable to send message, socket is not open"
        raise ldap_errors.LDAPSocketOpenError(connection.last_error)
    message_id: int = connection.server.next_message_id()
    connection.request = described
    connection.strategy._outstanding[message_id] = described
    try:
        connection.socket.sendall(ber.message(message_id, request, controls))
    except OSError as error:
        connection.last_error = f"socket sending error {type(error).__name__}"
        raise ldap_errors.LDAPSocketSendError(connection.last_error) from error
    return message_id


def search_all(
    connection: ldap3.Connection, base: str, search_filter: str, attributes: list[str]
) -> Iterator[Entry]:
    """Every matching entry, fetched in pages (never hitting a server's size limit)."""
    cookie: bytes | None = None
    while True:
        search(
            connection,
            base,
            search_filter,
            ldap3.SUBTREE,
            attributes,
            paged_size=PAGE,
            paged_cookie=cookie,
        )
        yield from entries_of(connection)
        cookie = paged_cookie(connection)
        if not cookie:
            return


class RefCache:
    """DN -> (SCIM id, display) for a short while, shared by the worker threads.

    Reading a page of users shows each one's manager and groups by id; without this,
    every DN would cost one more read per record. Writes by this service forget the DNs
    they touch, and tell them to the other workers' caches through `board`
    (connectors.forget_board), which each cache reads before it answers; changes made by
    other programs show within `ttl` seconds.
    """

    def __init__(
        self, ttl: float = 30.0, size: int = 50_000, board: ForgetBoard | None = None
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._board = board or ForgetBoard.private()
        self._lock = threading.Lock()
        self._found: dict[bytes, tuple[float, MemberRef | None]] = {}
        self._read = self._board.told()
        """How many keys the board had told when this cache last read it."""

    def get(self, dn: str) -> tuple[bool, MemberRef | None]:
        key = digest(dns.normalized(dn))
        self._catch_up()
        with self._lock:
            hit = self._found.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def stamp(self) -> int:
        """Taken before the directory is read for `put`: what was told since is known."""
        return self._board.told()

    def put(self, dn: str, ref: MemberRef | None, stamp: int) -> None:
        """Keep what a read begun at `stamp` found, unless a write told `dn` stale since
        (the read may have come before that write)."""
        key = digest(dns.normalized(dn))
        with self._lock:  # as `_catch_up`: a tell it has passed over is seen here
            _, told = self._board.told_since(stamp)
            if told is None or key in told:
                return
            if len(self._found) >= self._size:
                self._found.clear()
            self._found[key] = (time.monotonic() + self._ttl, ref)

    def forget(self, dn: str) -> None:
        """After a write that changed what `dn` names (or removed, renamed or made it)."""
        key = digest(dns.normalized(dn))
        with self._lock:
            self._found.pop(key, None)
        self._board.tell(key)

    def clear(self) -> None:
        with self._lock:
            self._found.clear()

    def _catch_up(self) -> None:
        """Forget what the board told since this cache last read it."""
        if self._board.told() == self._read:
            return
        with self._lock:
            now, told = self._board.told_since(self._read)
            if told is None:
                self._found.clear()
            else:
                for key in told:
                    self._found.pop(key, None)
            self._read = max(self._read, now)


@dataclass
class Location:
    """Where the entries of one resource type are, and how they read as records."""

    kind: Kind
    spec: ObjectSpec
    container: str
    disabled: str | None
    key: KeyCodec
    member_attribute: str | None = None
    member_of: str | None = None
    refs: RefCache = field(default_factory=RefCache)

    @property
    def naming_attribute(self) -> str:
        return self.directory.naming_attribute

    @property
    def directory(self) -> DirectoryObject:
        if self.spec.directory is None:
            raise ValueError(f"the {self.kind.value} mapping names no directory object")
        return self.spec.directory

    @property
    def bases(self) -> list[str]:
        return [self.container] + ([self.disabled] if self.disabled else [])

    @property
    def stored_fields(self) -> list[str]:
        """The attributes the mapping maps (the virtual location field excluded)."""
        return [f.name for f in self.spec.fields if f.name != ENABLED_BY_LOCATION]

    def attributes(self, *, members: bool = False) -> list[str]:
        """What to read of an entry; memberOf always, since the version depends on it."""
        spec = self.spec
        names = [spec.key, *self.stored_fields]
        names += [name for name in (spec.created, spec.modified, spec.version) if name]
        if members and self.member_attribute:
            names.append(self.member_attribute)
        if self.member_of:
            names.append(self.member_of)
        return list(dict.fromkeys(names))

    def only_ours(self, search_filter: str) -> str:
        """`search_filter` limited to entries of the mapped classes (not the containers)."""
        classes = [c for c in self.directory.classes if c.lower() != "top"]
        terms = [f"(objectClass={escape(name)})" for name in classes] + [search_filter]
        return f"(&{''.join(terms)})"

    def is_enabled(self, dn: str) -> bool:
        return self.disabled is None or not dns.is_under(dn, self.disabled)

    def find(
        self, connection: ldap3.Connection, id: str, attributes: list[str], *, where: str = ""
    ) -> Entry:
        """The entry whose key is `id`, searched in every container of the type; `where`,
        a filter, narrows the search (NotFound too when the entry does not match it)."""
        value = self.key.filter_value(id)
        if value is not None:
            search_filter = self.only_ours(f"({self.spec.key}={escape(value)}){where}")
            for base in self.bases:
                search(connection, base, search_filter, ldap3.SUBTREE, attributes, size_limit=2)
                found = entries_of(connection)
                if found:
                    return found[0]
        raise NotFound(f"no {self.kind.value} record has this id")

    def find_many(
        self, connection: ldap3.Connection, ids: Iterable[str], attributes: list[str]
    ) -> dict[str, Entry]:
        """Entries by id, looked up in OR-ed chunks; ids that name nothing are left out."""
        wanted = [(id, self.key.filter_value(id)) for id in ids]
        values = [value for _, value in wanted if value is not None]
        found: dict[str, Entry] = {}
        for start in range(0, len(values), _OR_CHUNK):
            chunk = values[start : start + _OR_CHUNK]
            search_filter = self.only_ours(
                any_of([f"({self.spec.key}={escape(v)})" for v in chunk])
            )
            for base in self.bases:
                for entry in search_all(connection, base, search_filter, attributes):
                    found[self.id_of(entry)] = entry
        return found

    def id_of(self, entry: Entry) -> str:
        return self.key.id_of(entry.values(self.spec.key))

    def ref_of(self, entry: Entry) -> MemberRef:
        display = entry.first(self.spec.display) if self.spec.display else None
        return MemberRef(id=self.id_of(entry), display=None if display is None else str(display))

    def ref_attributes(self) -> list[str]:
        return [self.spec.key] + ([self.spec.display] if self.spec.display else [])

    def resolve(self, connection: ldap3.Connection, dn: str) -> MemberRef | None:
        """The record a DN names (through the cache), None when it is not one of ours."""
        known, ref = self.refs.get(dn)
        if known:
            return ref
        stamp = self.refs.stamp()
        ref = None
        if any(dns.is_under(dn, base) for base in self.bases):
            try:
                search(connection, dn, "(objectClass=*)", ldap3.BASE, self.ref_attributes())
            except ldap3.core.exceptions.LDAPNoSuchObjectResult:
                found: list[Entry] = []
            else:
                found = entries_of(connection)
            ref = self.ref_of(found[0]) if found else None
        self.refs.put(dn, ref, stamp)
        return ref

    def record(self, entry: Entry) -> Record:
        """The record of an entry. Reference fields still hold DNs: the caller resolves them."""
        spec = self.spec
        values: dict[str, Any] = {}
        for described in spec.fields:
            if described.name == ENABLED_BY_LOCATION:
                values[described.name] = self.is_enabled(entry.dn)
                continue
            found = entry.values(described.name)
            if found:
                values[described.name] = found if described.multi_valued else found[0]
        created = entry.first(spec.created) if spec.created else None
        modified = entry.first(spec.modified) if spec.modified else None
        return Record(
            id=self.id_of(entry),
            values=values,
            version=self.version_of(entry),
            created=parse_generalized_time(str(created)) if created else None,
            modified=parse_generalized_time(str(modified)) if modified else None,
        )

    def stored_version(self, entry: Entry) -> Any:
        """The version field's value as the directory holds it (entryCSN), if any."""
        return entry.first(self.spec.version) if self.spec.version else None

    def version_of(self, entry: Entry) -> str:
        """The version field's value with the user's groups, or a hash of the whole entry.

        A server-kept memberOf changes without touching entryCSN or modifyTimestamp, yet
        a user's `groups` are part of the resource (its ETag must change with them).
        """
        version = self.stored_version(entry)
        if version is None:
            # Not the members, which only some reads fetch: the same entry read with and
            # without them must have one version (an If-Match from a GET, on a PATCH).
            members = (self.member_attribute or "").lower()
            read = (f"{k}={v!r}" for k, v in entry.attributes.items() if k.lower() != members)
            parts = [entry.dn, *sorted(read)]
        else:
            groups = entry.values(self.member_of) if self.member_of else []
            parts = [str(version), *sorted(dns.normalized(str(each)) for each in groups)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
