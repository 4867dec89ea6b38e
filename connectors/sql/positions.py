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
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

LIFETIME = 60.0
"""Seconds a position is used for: a client paging through takes far less per page; an
old position is not offered to a later, unrelated request for the same index."""

MOST = 1024
"""Positions kept (the most recent): a few per client paging at once."""


class Positions:
    """The last key of recent pages, by (query, index of the record after the page)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._positions: OrderedDict[tuple[Hashable, int], tuple[Any, float]] = OrderedDict()

    def after(self, query: Hashable, index: int) -> Any | None:
        """The key the page starting at `index` continues after, or None (use OFFSET).

        `query` is what selects and orders the records (kind and condition); a query
        that cannot be hashed has no positions.
        """
        if index == 0:
            return None
        try:
            found = self._positions.get((query, index))
        except TypeError:
            return None
        if found is None:
            return None
        key, when = found
        if self._clock() - when > LIFETIME:
            del self._positions[(query, index)]
            return None
        return key

    def remember(self, query: Hashable, index: int, key: Any) -> None:
        """A page of `query` ended just before `index`, with the record of `key`."""
        try:
            self._positions.pop((query, index), None)
        except TypeError:
            return
        self._positions[(query, index)] = (key, self._clock())
        if len(self._positions) > MOST:
            self._positions.popitem(last=False)
