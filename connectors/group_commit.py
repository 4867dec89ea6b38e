"""Group commit: changes to one entry that arrive while a write of it is in flight go
together in the next write.

Identity providers push a group's members from several connections at once (one PATCH
per member), and every backend takes such writes one at a time. A directory without
transactions rewrites an entry whole on each modify: OpenLDAP's back-mdb copies every
value of a group of 50,000 members (and writes them back) to add one, which takes it
several milliseconds. A database holds the group's row locked for the length of each
transaction that changes its members (the group's version changes with them), so the
transactions of N concurrent PATCHes run in turn, each several round trips long. Here the
first change to an idle entry is written at once; changes that arrive meanwhile wait for
it, then go together in one write, so a queue of N costs one write instead of N.

Clients that each wait for their answer before sending the next change come back
together, a little apart: without more, the first of them would be written alone and
the rest would queue behind it, halving every write. So, as a database's group commit
delay does, once several changes to an entry have been seen together, the next write of
that entry waits for as many companions, but never longer than a quarter of what its
last write took (and at most 5 ms): a lone client, or an entry written for the first time
in a while, never waits. Changes that name
the same value are never put together (their order matters). A combination refused for
one change's value (InvalidValue: a member naming no user, a value the backend refuses,
found before anything is written, or rolled back with the rest of the transaction), or
refused by a system it must be agreed with (Rejected: a synchronous webhook receiver,
nothing written), is written again one change at a time, so that each gets its own
answer; any other error is
every change's, since the write may have been made (a journal that failed after the
modify must not be hidden by a retry that finds the members already there).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

from connectors.base import InvalidValue, Kind, MemberChanges, Record, Rejected, Unavailable

Key = TypeVar("Key", bound=Hashable)
Change = TypeVar("Change")
Result = TypeVar("Result")

MOST_NAMES = 1000
"""At most this many values named in one write (unless one change alone names more): a
combined modify stays well under the directory's request size limits."""

GATHER_SHARE = 0.25
"""The longest wait for companions, as a share of what the entry's last write took: a
change that finds none is delayed by at most this, one that finds them saves a write."""

GATHER_MOST = 0.005
"""And never longer than this (seconds), however long the entry's writes take."""

REMEMBERED = 256
"""How many entries' last writes are remembered (the most recent ones)."""


@dataclass(frozen=True)
class _LastWrite:
    """What the last write of an entry tells about the next: how many changes were
    seen together (those written and those that queued meanwhile), and when."""

    together: int
    took: float
    ended: float


@dataclass
class _Waiting(Generic[Change, Result]):
    change: Change
    answer: asyncio.Future[Result] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class UpdateTarget(NamedTuple):
    """The record an update writes, and what its answer reads back: what a group's member
    changes are keyed by here (those whose answers read differently go apart)."""

    kind: Kind
    id: str
    with_members: bool
    with_groups: bool


def merged(together: list[MemberChanges]) -> MemberChanges:
    """Member changes to one group as one: they name no member in common (`names_of`)."""
    return MemberChanges(
        added=frozenset().union(*(changes.added for changes in together)),
        removed=frozenset().union(*(changes.removed for changes in together)),
    )


def _replaces(changes: MemberChanges) -> bool:
    return changes.replace is not None


def names_of(changes: MemberChanges) -> set[str]:
    """The members a change names (ids compare case-insensitively): two changes that name
    one in common keep their order."""
    return {id.lower() for id in changes.added | changes.removed}


class MemberWritesTogether:
    """`update` (the Connector protocol's) for a connector whose `_update_now` makes one
    update: a group's member changes alone, what identity providers send most, often to
    one group from several connections at once, go through a group commit."""

    _member_writes: GroupCommit[UpdateTarget, MemberChanges, Record]

    async def _update_now(
        self,
        target: UpdateTarget,
        changes: Mapping[str, Any],
        members: MemberChanges | None,
        if_version: str | None,
    ) -> Record:
        raise NotImplementedError

    def _group_commit(self) -> GroupCommit[UpdateTarget, MemberChanges, Record]:
        """A new group commit (a closed one refuses every change). A replace of the whole
        member set goes through it too, alone: it is then never written beside another
        write of the group's members, which slapd's memberof overlay does not keep
        apart (two at once left memberOf on a user a replace had taken out)."""
        return GroupCommit(self._write_member_changes, names_of, alone=_replaces)

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
        if members and kind is not Kind.GROUPS:
            raise InvalidValue("only groups have members", field="members")
        target = UpdateTarget(kind, id, with_members, with_groups)
        if members and not changes and if_version is None:
            # Each caller gets a record of its own: callers may set what they read back.
            return copy.copy(await self._member_writes.submit(target, members))
        return await self._update_now(target, changes, members, if_version)

    async def _write_member_changes(
        self, target: UpdateTarget, together: list[MemberChanges]
    ) -> Record:
        """Several requests' member changes to one group, written as one update (a
        replace is always alone)."""
        changes = together[0] if len(together) == 1 else merged(together)
        return await self._update_now(target, {}, changes, None)


class GroupCommit(Generic[Key, Change, Result]):
    """Writes the changes to each key one write at a time, the waiting ones together.

    `write(key, changes)` writes several changes as one and returns the one result they
    all get; `names(change)` is the values a change names, compared to keep apart the
    changes whose order matters; `alone(change)`, a change never written with another.
    """

    def __init__(
        self,
        write: Callable[[Key, list[Change]], Awaitable[Result]],
        names: Callable[[Change], Collection[Hashable]],
        *,
        gather_share: float = GATHER_SHARE,
        gather_most: float = GATHER_MOST,
        alone: Callable[[Change], bool] | None = None,
    ) -> None:
        self._write = write
        self._names = names
        self._alone = alone or (lambda change: False)
        self._gather_share = gather_share
        self._gather_most = gather_most
        self._waiting: dict[Key, list[_Waiting[Change, Result]]] = {}
        self._writing: dict[Key, asyncio.Task[None]] = {}
        self._gathering: dict[Key, asyncio.TimerHandle] = {}
        self._last: dict[Key, _LastWrite] = {}
        self._closed = False

    async def submit(self, key: Key, change: Change) -> Result:
        """Write `change` (alone or with others) and return its result or raise its error.

        A caller that is cancelled stops waiting; the change, once queued, is still
        written, as a modify already sent to the directory would be.
        """
        if self._closed:
            raise _stopping()
        waiting: _Waiting[Change, Result] = _Waiting(change)
        # The error is raised to the caller; one that stopped waiting must not leave it
        # "never retrieved".
        waiting.answer.add_done_callback(_retrieved)
        self._waiting.setdefault(key, []).append(waiting)
        self._next(key)
        return await asyncio.shield(waiting.answer)

    def _next(self, key: Key) -> None:
        """Write what waits for `key` now, or once enough companions came (or the wait
        ended); nothing while a write of it is in flight."""
        queue = self._waiting.get(key)
        if not queue or key in self._writing:
            return
        delay = self._gather_time(key, len(queue))
        if key in self._gathering:
            if delay > 0:
                return
            self._gathering.pop(key).cancel()
        if delay > 0:
            self._gathering[key] = asyncio.get_running_loop().call_later(delay, self._gathered, key)
        else:
            self._start(key)

    def _gather_time(self, key: Key, queued: int) -> float:
        """How long `queued` changes wait for more: none unless the entry's last write,
        ended within its own duration, saw more changes together than there are now."""
        last = self._last.get(key)
        if last is None or queued >= last.together:
            return 0.0
        if asyncio.get_running_loop().time() - last.ended > last.took:
            return 0.0
        return min(last.took * self._gather_share, self._gather_most)

    def _gathered(self, key: Key) -> None:
        del self._gathering[key]
        self._start(key)

    async def close(self) -> None:
        """Refuse what still waits (503, to be retried) and let the writes under way end."""
        self._closed = True
        for handle in self._gathering.values():
            handle.cancel()
        self._gathering.clear()
        for queue in self._waiting.values():
            for waiting in queue:
                waiting.answer.set_exception(_stopping())
        self._waiting.clear()
        await asyncio.gather(*self._writing.values(), return_exceptions=True)

    def _start(self, key: Key) -> None:
        queue = self._waiting.pop(key, [])
        if not queue or self._closed:
            return
        named = set(self._names(queue[0].change))
        together = [queue[0]]
        for waiting in queue[1:] if not self._alone(queue[0].change) else []:
            if self._alone(waiting.change):
                break  # written alone, in its turn
            names = self._names(waiting.change)
            if len(named) + len(names) > MOST_NAMES or not named.isdisjoint(names):
                break  # in arrival order: what comes after a clash waits for the next write
            named.update(names)
            together.append(waiting)
        rest = queue[len(together) :]
        if rest:
            self._waiting[key] = rest
        task = asyncio.create_task(self._write_together(key, together))
        self._writing[key] = task
        began = asyncio.get_running_loop().time()
        # Not in the task's own `finally`: a task cancelled before it ever ran has none.
        task.add_done_callback(lambda _: self._finished(key, together, began))

    def _finished(self, key: Key, together: list[_Waiting[Change, Result]], began: float) -> None:
        now = asyncio.get_running_loop().time()
        seen = len(together) + len(self._waiting.get(key, []))
        self._last.pop(key, None)  # the most recent last: the oldest is forgotten first
        self._last[key] = _LastWrite(seen, now - began, now)
        if len(self._last) > REMEMBERED:
            del self._last[next(iter(self._last))]
        for waiting in together:
            if not waiting.answer.done():  # the write was cancelled (the loop is stopping)
                waiting.answer.set_exception(_stopping())
        del self._writing[key]
        self._next(key)

    async def _write_together(self, key: Key, together: list[_Waiting[Change, Result]]) -> None:
        outcome = await self._outcome(key, [waiting.change for waiting in together])
        outcomes = [outcome] * len(together)
        if len(together) > 1 and isinstance(outcome, InvalidValue | Rejected):
            outcomes = [await self._outcome(key, [waiting.change]) for waiting in together]
        for waiting, each in zip(together, outcomes, strict=True):
            if isinstance(each, Exception):
                # Each caller raises an error of its own: one instance raised in several
                # tasks would gather their tracebacks, and a caller may annotate it.
                waiting.answer.set_exception(_own_copy(each))
            else:
                waiting.answer.set_result(each)

    async def _outcome(self, key: Key, changes: list[Change]) -> Result | Exception:
        try:
            return await self._write(key, changes)
        except Exception as error:  # handed to each caller, raised there
            return error


def _own_copy(error: Exception) -> Exception:
    """A copy of `error` for one caller; the error itself when it cannot be copied (an
    exception whose constructor takes other arguments than its message)."""
    try:
        return copy.copy(error)
    except Exception:
        return error


def _stopping() -> Unavailable:
    """The error of a change the service stops before writing (503, to be retried)."""
    return Unavailable("the service is stopping; retry later")


def _retrieved(answer: asyncio.Future[Any]) -> None:
    if not answer.cancelled():
        answer.exception()
