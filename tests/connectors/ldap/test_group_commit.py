"""Group commit on its own: which changes go together, and who gets which answer.

The writer here is a coroutine that records what it was given and waits on an event the
test sets, so that the test decides what arrives while a write is in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectors.base import InvalidValue, Unavailable
from connectors.ldap.group_commit import GroupCommit


class Writer:
    """Writes sets of names; a write containing "bad" is refused, as a directory would."""

    def __init__(self) -> None:
        self.writes: list[list[set[str]]] = []
        self.release = asyncio.Event()
        self.unavailable = False

    async def __call__(self, key: str, changes: list[set[str]]) -> str:
        self.writes.append(changes)
        await self.release.wait()
        if self.unavailable:
            raise Unavailable("the directory cannot be reached")
        if any("bad" in change for change in changes):
            raise InvalidValue("refused", field="members")
        return f"{key}:{len(self.writes)}"


def overlapping(first: set[str], second: set[str]) -> bool:
    return bool(first & second)


async def started(commit: GroupCommit[str, set[str], str], *changes: set[str]) -> list[Any]:
    tasks = [asyncio.create_task(commit.submit("g", change)) for change in changes]
    await settled()
    return tasks


async def settled() -> None:
    """Let every task run until it waits on the writer."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_changes_that_arrive_during_a_write_go_together_in_the_next() -> None:
    writer = Writer()
    commit = GroupCommit(writer, overlapping)
    first, *waiting = await started(commit, {"a"}, {"b"}, {"c"}, {"d"})
    assert writer.writes == [[{"a"}]]  # the first is written at once, alone
    writer.release.set()
    answers = await asyncio.gather(first, *waiting)
    assert writer.writes == [[{"a"}], [{"b"}, {"c"}, {"d"}]]
    assert answers == ["g:1", "g:2", "g:2", "g:2"]


async def test_changes_naming_a_common_value_are_written_in_their_order() -> None:
    writer = Writer()
    commit = GroupCommit(writer, overlapping)
    tasks = await started(commit, {"a"}, {"b"}, {"b", "c"}, {"d"})
    writer.release.set()
    await asyncio.gather(*tasks)
    # {"b", "c"} may not join {"b"}; {"d"} arrived after it and waits with it.
    assert writer.writes == [[{"a"}], [{"b"}], [{"b", "c"}, {"d"}]]


async def test_a_refused_combination_is_written_again_one_change_at_a_time() -> None:
    writer = Writer()
    commit = GroupCommit(writer, overlapping)
    first, good, bad, other = await started(commit, {"a"}, {"b"}, {"bad"}, {"c"})
    writer.release.set()
    assert await first == "g:1"
    assert await good == "g:3"
    with pytest.raises(InvalidValue):
        await bad
    assert await other == "g:5"
    assert writer.writes == [[{"a"}], [{"b"}, {"bad"}, {"c"}], [{"b"}], [{"bad"}], [{"c"}]]


async def test_an_unavailable_directory_fails_the_combination_without_retrying_each() -> None:
    writer = Writer()
    commit = GroupCommit(writer, overlapping)
    first, *waiting = await started(commit, {"a"}, {"b"}, {"c"})
    writer.unavailable = True
    writer.release.set()
    for task in (first, *waiting):
        with pytest.raises(Unavailable):
            await task
    assert writer.writes == [[{"a"}], [{"b"}, {"c"}]]


async def test_a_caller_that_stops_waiting_does_not_stop_its_write() -> None:
    writer = Writer()
    commit = GroupCommit(writer, overlapping)
    first, second = await started(commit, {"a"}, {"b"})
    second.cancel()
    writer.release.set()
    assert await first == "g:1"
    with pytest.raises(asyncio.CancelledError):
        await second
    await settled()
    assert writer.writes == [[{"a"}], [{"b"}]]


async def test_keys_are_written_independently() -> None:
    writer = Writer()
    commit = GroupCommit(writer, overlapping)
    one = asyncio.create_task(commit.submit("one", {"a"}))
    two = asyncio.create_task(commit.submit("two", {"a"}))
    await settled()
    assert writer.writes == [[{"a"}], [{"a"}]]  # both in flight at once
    writer.release.set()
    assert await asyncio.gather(one, two) == ["one:2", "two:2"]
