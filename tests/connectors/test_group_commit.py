"""Group commit on its own: which changes go together, and who gets which answer.

The writer here is a coroutine that records what it was given and waits on an event the
test sets, so that the test decides what arrives while a write is in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectors.base import (
    ConnectorError,
    EventLost,
    InvalidValue,
    PartiallyWritten,
    Rejected,
    Unavailable,
)
from connectors.group_commit import MOST_NAMES, GroupCommit


class Writer:
    """Writes sets of names; a write containing "bad" is refused, as a directory would."""

    def __init__(self) -> None:
        self.writes: list[list[set[str]]] = []
        self.release = asyncio.Event()
        self.unavailable = False
        self.journal_fails = False

    async def __call__(self, key: str, changes: list[set[str]]) -> str:
        self.writes.append(changes)
        await self.release.wait()
        if self.unavailable:
            raise Unavailable("the directory cannot be reached")
        if self.journal_fails:
            raise ConnectorError("the events could not be stored")  # after the write
        if any("bad" in change for change in changes):
            raise InvalidValue("refused", field="members")
        if any("refused" in change for change in changes):
            raise Rejected("the webhook receiver audit refused the change (HTTP 403)")
        return f"{key}:{len(self.writes)}"


def named(change: set[str]) -> set[str]:
    return change


async def started(commit: GroupCommit[str, set[str], str], *changes: set[str]) -> list[Any]:
    tasks = [asyncio.create_task(commit.submit("g", change)) for change in changes]
    await settled()
    return tasks


def without_gathering(writer: Writer) -> GroupCommit[str, set[str], str]:
    """Group commit without the wait for companions (its own tests are below): what waits
    is written as soon as the write before it ends, whatever the machine's timing."""
    return GroupCommit(writer, named, gather_most=0.0)


async def settled() -> None:
    """Let every task run until it waits on the writer."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_changes_that_arrive_during_a_write_go_together_in_the_next() -> None:
    writer = Writer()
    commit = without_gathering(writer)
    first, *waiting = await started(commit, {"a"}, {"b"}, {"c"}, {"d"})
    assert writer.writes == [[{"a"}]]  # the first is written at once, alone
    writer.release.set()
    answers = await asyncio.gather(first, *waiting)
    assert writer.writes == [[{"a"}], [{"b"}, {"c"}, {"d"}]]
    assert answers == ["g:1", "g:2", "g:2", "g:2"]


async def test_changes_naming_a_common_value_are_written_in_their_order() -> None:
    writer = Writer()
    commit = without_gathering(writer)
    tasks = await started(commit, {"a"}, {"b"}, {"b", "c"}, {"d"})
    writer.release.set()
    await asyncio.gather(*tasks)
    # {"b", "c"} may not join {"b"}; {"d"} arrived after it and waits with it.
    assert writer.writes == [[{"a"}], [{"b"}], [{"b", "c"}, {"d"}]]


async def test_a_change_to_be_written_alone_joins_none_and_none_joins_it() -> None:
    """A replace of a group's whole member set: combined with adds, the group would hold
    neither what the replace said nor the adds; written beside another write of the
    group, slapd's memberof overlay lost track of who is in it."""
    writer = Writer()
    commit = GroupCommit(writer, named, gather_most=0.0, alone=lambda change: "all" in change)
    tasks = await started(commit, {"a"}, {"b"}, {"all", "x"}, {"c"}, {"all", "y"}, {"d"})
    writer.release.set()
    await asyncio.gather(*tasks)
    assert writer.writes == [[{"a"}], [{"b"}], [{"all", "x"}], [{"c"}], [{"all", "y"}], [{"d"}]]


@pytest.mark.parametrize(
    ("value", "error"),
    [("bad", InvalidValue), ("refused", Rejected)],
    ids=["value-refused", "receiver-refused"],
)
async def test_a_refused_combination_is_written_again_one_change_at_a_time(
    value: str, error: type[Exception]
) -> None:
    # A value the backend refuses, or a synchronous webhook receiver refusing one
    # request's members (nothing written either way): before, a receiver's refusal failed
    # every request of the combination with 502.
    writer = Writer()
    commit = without_gathering(writer)
    first, good, bad, other = await started(commit, {"a"}, {"b"}, {value}, {"c"})
    writer.release.set()
    assert await first == "g:1"
    assert await good == "g:3"
    with pytest.raises(error):
        await bad
    assert await other == "g:5"
    assert writer.writes == [[{"a"}], [{"b"}, {value}, {"c"}], [{"b"}], [{value}], [{"c"}]]


async def test_an_error_after_the_write_is_every_callers_not_hidden_by_a_retry() -> None:
    writer = Writer()
    commit = without_gathering(writer)
    first, *waiting = await started(commit, {"a"}, {"b"}, {"c"})
    writer.journal_fails = True
    writer.release.set()
    errors = []
    for task in (first, *waiting):
        with pytest.raises(ConnectorError) as raised:
            await task
        errors.append(raised.value)
    assert writer.writes == [[{"a"}], [{"b"}, {"c"}]]
    assert errors[1] is not errors[2]  # each caller raises an error of its own


@pytest.mark.parametrize(
    "error",
    [EventLost(), PartiallyWritten("stopped half-way", written=("cn",))],
    ids=["event-lost", "partially-written"],
)
async def test_errors_whose_constructors_take_other_arguments_reach_every_caller(
    error: ConnectorError,
) -> None:
    # Each caller gets a copy: the default copy called the constructor with the message
    # alone, which these refuse, and the callers were answered "the service is stopping".
    async def write(key: str, changes: list[set[str]]) -> str:
        await asyncio.sleep(0)
        raise error

    commit = GroupCommit(write, named, gather_most=0.0)
    tasks = [asyncio.create_task(commit.submit("g", change)) for change in ({"a"}, {"b"}, {"c"})]
    raised = []
    for task in tasks:
        with pytest.raises(type(error)) as caught:
            await task
        raised.append(caught.value)
    assert [str(each) for each in raised] == [str(error)] * 3
    assert all(vars(each) == vars(error) for each in raised)
    assert raised[1] is not raised[2]


class TwoPartError(Exception):
    """An error whose constructor takes other arguments than its message: not copied."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} {second}")


async def test_an_error_that_cannot_be_copied_still_reaches_every_caller() -> None:
    error = TwoPartError("the write", "failed")

    async def write(key: str, changes: list[set[str]]) -> str:
        await asyncio.sleep(0)
        raise error

    commit = GroupCommit(write, named, gather_most=0.0)
    tasks = [asyncio.create_task(commit.submit("g", change)) for change in ({"a"}, {"b"}, {"c"})]
    for task in tasks:
        with pytest.raises(TwoPartError, match="the write failed"):
            await task


async def test_a_write_names_at_most_so_many_values() -> None:
    writer = Writer()
    commit = without_gathering(writer)
    half = MOST_NAMES // 2
    big = [{f"{n}-{i}" for i in range(half)} for n in range(3)]
    tasks = await started(commit, {"a"}, *big)
    writer.release.set()
    await asyncio.gather(*tasks)
    assert [len(write) for write in writer.writes] == [1, 2, 1]


async def test_closing_refuses_what_waits_and_lets_the_write_under_way_end() -> None:
    writer = Writer()
    commit = without_gathering(writer)
    first, second = await started(commit, {"a"}, {"b"})
    closing = asyncio.create_task(commit.close())
    await settled()
    assert not closing.done()  # the write of {"a"} is under way
    with pytest.raises(Unavailable):
        await second
    writer.release.set()
    await closing
    assert await first == "g:1"
    assert writer.writes == [[{"a"}]]
    with pytest.raises(Unavailable):
        await commit.submit("g", {"c"})


async def test_a_write_cancelled_before_it_ran_frees_its_callers_and_its_key() -> None:
    writer = Writer()
    commit = without_gathering(writer)
    first = asyncio.create_task(commit.submit("g", {"a"}))
    await asyncio.sleep(0)  # submitted: its write is a task that has not run yet
    [writing] = [
        t
        for t in asyncio.all_tasks()
        if t is not first and not t.done() and t is not asyncio.current_task()
    ]
    writing.cancel()
    with pytest.raises(Unavailable):
        await asyncio.wait_for(first, timeout=5)
    writer.release.set()
    assert await commit.submit("g", {"b"}) == "g:1"  # the key is not left busy


async def test_an_unavailable_directory_fails_the_combination_without_retrying_each() -> None:
    writer = Writer()
    commit = without_gathering(writer)
    first, *waiting = await started(commit, {"a"}, {"b"}, {"c"})
    writer.unavailable = True
    writer.release.set()
    for task in (first, *waiting):
        with pytest.raises(Unavailable):
            await task
    assert writer.writes == [[{"a"}], [{"b"}, {"c"}]]


async def test_a_caller_that_stops_waiting_does_not_stop_its_write() -> None:
    writer = Writer()
    commit = without_gathering(writer)
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
    commit = without_gathering(writer)
    one = asyncio.create_task(commit.submit("one", {"a"}))
    two = asyncio.create_task(commit.submit("two", {"a"}))
    await settled()
    assert writer.writes == [[{"a"}], [{"a"}]]  # both in flight at once
    writer.release.set()
    assert await asyncio.gather(one, two) == ["one:2", "two:2"]


# --- Waiting for companions -------------------------------------------------------------


class SlowWriter:
    """Each write takes `seconds`; records what it was given and when it began."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.writes: list[list[set[str]]] = []
        self.began: list[float] = []

    async def __call__(self, key: str, changes: list[set[str]]) -> str:
        self.writes.append(changes)
        self.began.append(asyncio.get_running_loop().time())
        await asyncio.sleep(self.seconds)
        return f"{key}:{len(self.writes)}"


async def test_a_lone_client_is_written_at_once_every_time() -> None:
    writer = SlowWriter(0.05)
    commit = GroupCommit(writer, named, gather_share=1.0, gather_most=10.0)
    for name in "abcd":
        task = asyncio.create_task(commit.submit("g", {name}))
        await settled()
        assert writer.writes[-1] == [{name}]  # begun without waiting for anyone
        await task


async def test_after_changes_came_together_the_next_write_waits_for_as_many() -> None:
    writer = SlowWriter(0.2)
    commit = GroupCommit(writer, named, gather_share=1.0, gather_most=10.0)
    first, *queued = await started(commit, {"a"}, {"b"}, {"c"})
    await first  # three were seen together: the next write waits for a third
    await settled()
    assert writer.writes == [[{"a"}]]
    third = asyncio.create_task(commit.submit("g", {"d"}))
    await settled()
    assert writer.writes == [[{"a"}], [{"b"}, {"c"}, {"d"}]]  # begun once it came
    assert await asyncio.gather(*queued, third) == ["g:2"] * 3


async def test_the_wait_for_companions_is_bounded() -> None:
    writer = SlowWriter(0.4)
    commit = GroupCommit(writer, named, gather_share=1.0, gather_most=0.1)
    tasks = await started(commit, {"a"}, {"b"}, {"c"})
    await asyncio.gather(*tasks)
    assert writer.writes == [[{"a"}], [{"b"}, {"c"}]]
    # The first write took 0.4 s; its companions waited 0.1 s more (the bound), not 0.4.
    assert 0.45 <= writer.began[1] - writer.began[0] < 0.7


async def test_an_entry_left_idle_is_written_at_once_again() -> None:
    writer = SlowWriter(0.1)
    commit = GroupCommit(writer, named, gather_share=1.0, gather_most=10.0)
    await asyncio.gather(*await started(commit, {"a"}, {"b"}, {"c"}))
    await asyncio.sleep(0.3)  # longer than its last write took: that burst is over
    task = asyncio.create_task(commit.submit("g", {"d"}))
    await settled()
    assert writer.writes[-1] == [{"d"}]
    await task


async def test_closing_refuses_the_changes_waiting_for_companions() -> None:
    writer = SlowWriter(0.2)
    commit = GroupCommit(writer, named, gather_share=1.0, gather_most=10.0)
    first, *queued = await started(commit, {"a"}, {"b"}, {"c"})
    await first
    await commit.close()
    for task in queued:
        with pytest.raises(Unavailable):
            await task
    await asyncio.sleep(0.3)
    assert writer.writes == [[{"a"}]]
