"""Paging a search with the Simple Paged Results control (RFC 2696), in O(N) overall.

SCIM pages by index (startIndex, count: RFC 7644 §3.4.2.4) while LDAP pages by an opaque
cookie that lives on one connection. A client reading N entries page by page would cost
O(N²) if every page were found by skipping from the start. So after each page the
server's cookie is kept for a short while, keyed by the query and the next index, with
the connection it belongs to and the total counted for the first page: the next page
continues where the last one stopped. A cookie that went stale (its connection was
replaced or started another paged search) is noticed, and the page is found the long
way instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors

from connectors.base import Query
from connectors.ldap.directory import PAGE, Entry, entries_of, paged_cookie, search, search_all
from connectors.ldap.pool import Slot
from connectors.recent import Recent

CursorKey = tuple[Any, ...]
SIZE_LIMIT_EXCEEDED = 4
"""RFC 4511 §4.1.9 resultCode sizeLimitExceeded."""


@dataclass
class Cursor:
    slot: Slot
    epoch: int
    cookie: bytes
    total: int


CursorCache = Recent[CursorKey, Cursor]
"""Live paged-search cookies by (query, next index), shared by the worker threads."""


def cursor_cache() -> CursorCache:
    """Cookies kept a minute (a client paging through takes far less per page)."""
    return Recent(lifetime=60.0, most=256)


@dataclass(frozen=True)
class Segment:
    """One search: a base and a filter (a type may live in two containers)."""

    base: str
    filter: str


class PagedSearch:
    """One SCIM search over one or more segments, with its cursor key."""

    def __init__(self, identity: tuple[Any, ...], attributes: list[str], query: Query) -> None:
        self.identity = identity
        self.attributes = attributes
        self.query = query

    def key(self, offset: int) -> CursorKey:
        return (*self.identity, tuple(self.attributes), repr(self.query.where), offset)

    def run(
        self,
        slot: Slot,
        connection: ldap3.Connection,
        segments: list[Segment],
        cursors: CursorCache,
        sort_key: Callable[[Entry], tuple[Any, ...]] | None,
    ) -> tuple[list[Entry], int]:
        """The entries of the requested page and the total that match."""
        if sort_key is None and len(segments) == 1:
            return self._sequential(slot, connection, segments[0], cursors)
        if self.query.limit == 0:
            return [], sum(_count(connection, segment) for segment in segments)
        found = [
            entry
            for segment in segments
            for entry in search_all(connection, segment.base, segment.filter, self.attributes)
        ]
        if sort_key is not None:
            found.sort(key=sort_key)
        start = self.query.offset
        end = None if self.query.limit is None else start + self.query.limit
        return found[start:end], len(found)

    def _sequential(
        self, slot: Slot, connection: ldap3.Connection, segment: Segment, cursors: CursorCache
    ) -> tuple[list[Entry], int]:
        query = self.query
        cursor = cursors.take(self.key(query.offset))
        if cursor is not None and cursor.slot is slot and cursor.epoch == slot.paging_epoch:
            try:
                entries, cookie = self._fetch(connection, segment, query.limit, cursor.cookie)
            except ldap_errors.LDAPOperationResult:
                pass  # the server forgot the cookie: find the page the long way
            else:
                self._keep(cursors, slot, cookie, cursor.total, query.offset + len(entries))
                return entries, cursor.total
        if query.offset == 0 and query.limit:
            few = self._at_most(connection, segment, query.limit)
            if few is not None:
                return few, len(few)
        total = _count(connection, segment)
        if query.limit == 0 or query.offset >= total:
            return [], total
        slot.start_paging()
        cookie = self._skip(connection, segment, query.offset)
        if query.offset and cookie is None:
            return [], total
        entries, cookie = self._fetch(connection, segment, query.limit, cookie)
        self._keep(cursors, slot, cookie, total, query.offset + len(entries))
        return entries, total

    def _at_most(
        self, connection: ldap3.Connection, segment: Segment, limit: int
    ) -> list[Entry] | None:
        """Every match when there are no more than `limit`, found by one plain search.

        This is how a lookup (`userName eq "x"`) is answered: the page is the whole
        result, so its total needs no count of its own. None when more match (the
        server's sizeLimitExceeded): the page is then found with a paged search.
        """
        search(
            connection,
            segment.base,
            segment.filter,
            ldap3.SUBTREE,
            self.attributes,
            size_limit=limit,
        )
        # ldap3 does not raise on sizeLimitExceeded: it is in the result.
        if (connection.result or {}).get("result") == SIZE_LIMIT_EXCEEDED:
            return None
        return entries_of(connection)

    def _keep(
        self, cursors: CursorCache, slot: Slot, cookie: bytes | None, total: int, next_index: int
    ) -> None:
        if cookie:
            cursors.put(self.key(next_index), Cursor(slot, slot.paging_epoch, cookie, total))

    def _skip(self, connection: ldap3.Connection, segment: Segment, count: int) -> bytes | None:
        """Page past the first `count` entries; the cookie where they end."""
        cookie: bytes | None = None
        while count > 0:
            size = min(count, PAGE)
            self._search(connection, segment, size, cookie)
            count -= len(entries_of(connection))
            cookie = paged_cookie(connection)
            if not cookie:
                return None
        return cookie

    def _fetch(
        self,
        connection: ldap3.Connection,
        segment: Segment,
        limit: int | None,
        cookie: bytes | None,
    ) -> tuple[list[Entry], bytes | None]:
        """Up to `limit` entries (all, when None) from the cookie's position."""
        entries: list[Entry] = []
        while limit is None or len(entries) < limit:
            size = PAGE if limit is None else min(limit - len(entries), PAGE)
            self._search(connection, segment, size, cookie)
            entries += entries_of(connection)
            cookie = paged_cookie(connection)
            if not cookie:
                break
        return entries, cookie

    def _search(
        self, connection: ldap3.Connection, segment: Segment, size: int, cookie: bytes | None
    ) -> None:
        search(
            connection,
            segment.base,
            segment.filter,
            ldap3.SUBTREE,
            self.attributes,
            paged_size=size,
            paged_cookie=cookie,
        )


def _count(connection: ldap3.Connection, segment: Segment) -> int:
    """How many entries match, reading no attributes (`1.1`, RFC 4511 §4.5.1.8)."""
    return sum(1 for _ in search_all(connection, segment.base, segment.filter, ["1.1"]))
