"""Where recent pages in key order ended, so that the next page starts after a key.

SCIM pages by index (RFC 7644 §3.4.2.4: startIndex and count). An SQL OFFSET reads and
skips every row before the page, so paging through 100,000 users costs the last pages a
hundred times the first. A client that pages asks for the page right after the one it was
given: when a recent page of the same query ended at index `n`, the page starting at `n`
is read as "the rows after that page's last key" instead, through the primary key index,
whatever `n` is. Any other page (the first, a jump, a query seen by another worker, a
position older than `LIFETIME`) is read with OFFSET, as before.

The RFC does not promise a stable snapshot across pages. A record added or removed
before the position between two requests moves OFFSET's pages (a removal makes the next
page skip a record); the key position continues right after the last record the client
was given, which is what it wanted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from connectors.recent import Recent

LIFETIME = 60.0
"""Seconds a position is used for: a client paging through takes far less per page; an
old position is not offered to a later, unrelated request for the same index."""

MOST = 1024
"""Positions kept (the most recent): a few per client paging at once."""


class Positions:
    """The last key of recent pages, by (query, index of the record after the page)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._positions: Recent[tuple[Hashable, int], Any] = Recent(LIFETIME, MOST, clock)

    def after(self, query: Hashable, index: int) -> Any | None:
        """The key the page starting at `index` continues after, or None (use OFFSET).

        `query` is what selects and orders the records (kind and condition); a query
        that cannot be hashed has no positions.
        """
        if index == 0:
            return None
        try:
            return self._positions.get((query, index))
        except TypeError:
            return None

    def remember(self, query: Hashable, index: int, key: Any) -> None:
        """A page of `query` ended just before `index`, with the record of `key`."""
        try:
            self._positions.put((query, index), key)
        except TypeError:
            return
