"""The outbox table on every database: exact times, head-of-line order, SKIP LOCKED."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.webhook.outbox import NewEvent, Outbox
from connectors.webhook.status import Status


def event(number: int, resource: str) -> NewEvent:
    return NewEvent(f"msg_{number}", "hr", "user.updated", "User", resource, "{}")


async def test_due_events_are_the_head_of_each_resources_line(sql_url: str) -> None:
    outbox = Outbox()
    engine = create_async_engine(sql_url)
    try:
        async with engine.begin() as connection:
            await outbox.create(connection)
            await outbox.append(
                connection, [event(1, "a"), event(2, "a"), event(3, "b"), event(4, "a")]
            )
        async with engine.begin() as connection:
            due = await outbox.claim(connection, "hr", 10, lock=False)
            assert [each.id for each in due] == ["msg_1", "msg_3"]
            # Times are kept to the second at least (MariaDB's FLOAT would be 64 s off).
            assert all(abs(each.due - time.time()) < 5 for each in due)
            await outbox.finish(connection, due[0].sequence, Status.DELIVERED, attempts=1)
            later = time.time() + 3600
            await outbox.finish(
                connection, due[1].sequence, Status.PENDING, attempts=1, due=later, error="x"
            )
        async with engine.begin() as connection:
            # a's next event is due; b waits for its retry, and so would b's next event.
            assert [each.id for each in await outbox.claim(connection, "hr", 10, lock=False)] == [
                "msg_2"
            ]
            assert await outbox.counts(connection) == {
                Status.PENDING: 3,
                Status.DELIVERED: 1,
                Status.FAILED: 0,
            }
    finally:
        await engine.dispose()


@pytest.mark.parametrize("sql_url", ["postgresql", "mariadb"], indirect=True)
async def test_claimed_events_are_skipped_by_another_claimer(sql_url: str) -> None:
    outbox = Outbox()
    engine = create_async_engine(sql_url)
    try:
        async with engine.begin() as connection:
            await outbox.create(connection)
            await outbox.append(connection, [event(1, "a"), event(2, "a"), event(3, "b")])
        async with engine.connect() as first, engine.connect() as second, first.begin():
            held = await outbox.claim(first, "hr", 1, lock=True)
            assert [each.id for each in held] == ["msg_1"]
            async with second.begin():
                # msg_1 is locked; msg_2 waits behind it; only b's event is free.
                other = await outbox.claim(second, "hr", 10, lock=True)
                assert [each.id for each in other] == ["msg_3"]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("sql_url", ["postgresql"], indirect=True)
async def test_every_failed_event_is_retried_however_many(sql_url: str) -> None:
    """40,000 dead letters after a long outage: more than asyncpg's 32,767 parameters of
    one statement, so they are not named one by one."""
    outbox = Outbox()
    engine = create_async_engine(sql_url)
    try:
        async with engine.begin() as connection:
            await outbox.create(connection)
            await outbox.append(connection, [event(n, f"r{n}") for n in range(40_000)])
            await connection.execute(outbox.table.update().values(status=Status.FAILED))
        async with engine.begin() as connection:
            retried = await outbox.retry(connection, all_failed=True)
            assert len(retried) == 40_000
            assert (await outbox.counts(connection))[Status.PENDING] == 40_000
            assert await outbox.retry(connection, ids=["msg_7", "msg_nothing"]) == []
    finally:
        await engine.dispose()
