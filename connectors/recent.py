"""A bounded map whose entries expire: what a connector keeps between a client's requests.

Paging is the case: SCIM pages by index, a backend pages by its own position (an LDAP
cookie, the last key of an SQL page). The position a page ended at is kept for a while,
keyed by the query and the next index, so that the next page continues from it. Kept
positions are bounded (the oldest is dropped first) and expire, so that an old one is
never offered to a later, unrelated request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class Recent(Generic[Key, Value]):
    """At most `most` values, each for `lifetime` seconds after it was put.

    Thread-safe: the LDAP connector's worker threads share one.
    """

    def __init__(
        self, lifetime: float, most: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lifetime = lifetime
        self._most = most
        self._clock = clock
        self._lock = threading.Lock()
        self._values: OrderedDict[Key, tuple[Value, float]] = OrderedDict()

    def get(self, key: Key) -> Value | None:
        """The value put for `key`, unless it expired (then it is dropped)."""
        with self._lock:
            found = self._values.get(key)
            if found is None:
                return None
            value, put_at = found
            if self._clock() - put_at > self._lifetime:
                del self._values[key]
                return None
            return value

    def take(self, key: Key) -> Value | None:
        """As `get`, and the value is no longer kept."""
        with self._lock:
            found = self._values.pop(key, None)
        if found is None or self._clock() - found[1] > self._lifetime:
            return None
        return found[0]

    def put(self, key: Key, value: Value) -> None:
        """Keep `value` for `key` (as the most recent); the oldest goes beyond `most`."""
        with self._lock:
            self._values.pop(key, None)
            self._values[key] = (value, self._clock())
            while len(self._values) > self._most:
                self._values.popitem(last=False)
