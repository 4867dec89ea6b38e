"""Turns: the writes of one resource, taken one at a time within this process.

A PATCH or PUT reads the resource, works out what changes, and writes on the version it
read. Two of them on one resource in parallel (identity providers provision from several
threads) would each read the same version, and the second write would find it gone. In
turns, each reads what the one before it wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


class Turns:
    """One lock per key, kept only while someone holds it or waits for it: the keys of
    resources written once are not remembered."""

    def __init__(self) -> None:
        self._turns: dict[Hashable, _Turn] = {}

    @asynccontextmanager
    async def taken(self, key: Hashable) -> AsyncIterator[None]:
        """Wait for the writes of `key` that came first, then hold the turn."""
        turn = self._turns.setdefault(key, _Turn())
        turn.waiting += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.waiting -= 1
            if not turn.waiting:
                del self._turns[key]

    def __len__(self) -> int:
        return len(self._turns)
