"""Group commit: changes to one entry that arrive while a write of it is in flight go
together in the next write.

A directory without transactions rewrites an entry whole on each modify: OpenLDAP's
back-mdb copies every value of a group of 50,000 members (and writes them back) to add
one, which takes it several milliseconds, one modify at a time. When an identity provider
pushes members to such a group from several connections at once, each PATCH would wait
for all the modifies queued before it. Here the first change to an entry is written at
once, as before; changes that arrive meanwhile wait for it, then go together in one
write, so a queue of N costs one rewrite of the entry instead of N. Changes that touch
the same value are never put together (their order matters); a combination that fails is
written again one change at a time, so that each gets its own answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from connectors.base import Unavailable

Key = TypeVar("Key", bound=Hashable)
Change = TypeVar("Change")
Result = TypeVar("Result")

MOST_TOGETHER = 256
"""At most this many changes in one write: one request stays of a bounded size."""


@dataclass
class _Waiting(Generic[Change, Result]):
    change: Change
    answer: asyncio.Future[Result] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit(Generic[Key, Change, Result]):
    """Writes the changes to each key one write at a time, the waiting ones together.

    `write(key, changes)` writes several changes as one and returns the one result they
    all get; `apart(a, b)` says whether two changes must not go in one write.
    """

    def __init__(
        self,
        write: Callable[[Key, list[Change]], Awaitable[Result]],
        apart: Callable[[Change, Change], bool],
    ) -> None:
        self._write = write
        self._apart = apart
        self._waiting: dict[Key, list[_Waiting[Change, Result]]] = {}
        self._writing: dict[Key, asyncio.Task[None]] = {}

    async def submit(self, key: Key, change: Change) -> Result:
        """Write `change` (alone or with others) and return its result or raise its error.

        A caller that is cancelled stops waiting; the change, once queued, is still
        written, as a modify already sent to the directory would be.
        """
        waiting: _Waiting[Change, Result] = _Waiting(change)
        # The error is raised to the caller; one that stopped waiting must not leave it
        # "never retrieved".
        waiting.answer.add_done_callback(_retrieved)
        self._waiting.setdefault(key, []).append(waiting)
        if key not in self._writing:
            self._start(key)
        return await asyncio.shield(waiting.answer)

    def _start(self, key: Key) -> None:
        queue = self._waiting.pop(key, [])
        if not queue:
            return
        together = [queue[0]]
        for waiting in queue[1:]:
            if len(together) == MOST_TOGETHER or any(
                self._apart(waiting.change, other.change) for other in together
            ):
                break  # in arrival order: what comes after a clash waits for the next write
            together.append(waiting)
        rest = queue[len(together) :]
        if rest:
            self._waiting[key] = rest
        self._writing[key] = asyncio.create_task(self._write_together(key, together))

    async def _write_together(self, key: Key, together: list[_Waiting[Change, Result]]) -> None:
        try:
            if len(together) == 1:
                outcomes = [await self._outcome(key, [together[0].change])]
            else:
                combined = await self._outcome(key, [w.change for w in together])
                if isinstance(combined, Unavailable):
                    outcomes = [combined] * len(together)  # the directory, not a change, failed
                elif isinstance(combined, Exception):
                    # One change spoilt the write: each is written alone, for its own
                    # answer. What the failed write did make is found made (members are
                    # added and removed idempotently).
                    outcomes = [await self._outcome(key, [w.change]) for w in together]
                else:
                    outcomes = [combined] * len(together)
            for waiting, outcome in zip(together, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    waiting.answer.set_exception(outcome)
                else:
                    waiting.answer.set_result(outcome)
        finally:
            for waiting in together:
                if not waiting.answer.done():  # this task was cancelled (shutting down)
                    waiting.answer.cancel()
            del self._writing[key]
            self._start(key)

    async def _outcome(self, key: Key, changes: list[Change]) -> Result | Exception:
        try:
            return await self._write(key, changes)
        except Exception as error:  # handed to each caller, raised there
            return error


def _retrieved(answer: asyncio.Future[Any]) -> None:
    if not answer.cancelled():
        answer.exception()
