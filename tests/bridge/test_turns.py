"""Writes of one resource take turns; the turns of resources no longer written are gone."""

from __future__ import annotations

import asyncio

from bridge.turns import Turns


async def test_writes_of_one_key_take_turns_and_leave_nothing_behind() -> None:
    turns = Turns()
    inside: list[str] = []
    order: list[str] = []

    async def write(key: str, name: str) -> None:
        async with turns.taken(key):
            inside.append(key)
            assert inside.count(key) == 1  # never two writes of one key at once
            order.append(name)
            await asyncio.sleep(0.01)
            inside.remove(key)

    await asyncio.gather(write("a", "a1"), write("a", "a2"), write("b", "b1"))
    assert order.index("a1") < order.index("a2")
    assert order.index("b1") < order.index("a2")  # another key does not wait
    assert len(turns) == 0  # the keys of finished writes are not remembered


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    turns = Turns()
    held = asyncio.Event()

    async def holder() -> None:
        async with turns.taken("a"):
            held.set()
            await asyncio.sleep(0.05)

    first = asyncio.create_task(holder())
    await held.wait()

    async def waiter() -> None:
        async with turns.taken("a"):
            pass

    second = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    second.cancel()
    await asyncio.gather(first, second, return_exceptions=True)
    assert len(turns) == 0
