"""A synchronous webhook receiver: what it is asked within a request, what a client is told
when it cannot answer, and how it is put right when it may have taken a change that was
then undone. Real aiohttp receivers on 127.0.0.1, the service in process on SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from direct import SqlDirect
from receiver import SECRET, Arrival, Receiver
from scim_client import GROUP_SCHEMA, USER_SCHEMA
from served import serve, serve_config

from connectors.sql.connector import _put_right_within
from connectors.webhook.delivery import parse_retry_after
from connectors.webhook.journal import CLIENT_WAIT_MAX, OutboxJournal, client_wait
from connectors.webhook.outbox import Outbox

ENV = {"AUDIT_SECRET": SECRET}


def _audit(receiver: Receiver, settings: str = "") -> str:
    return (
        f'[webhooks.audit]\nurl = "{receiver.url}"\nsecret_env = "AUDIT_SECRET"\n'
        f"synchronous = true\n{settings}"
    )


def _own_store(tmp_path: Path, receiver: Receiver, settings: str) -> Path:
    """A `webhook` connector on tmp_path/store.db whose only receiver is synchronous."""
    path = tmp_path / "config.toml"
    path.write_text(
        'mapping = "sql-default"\n[server]\nbase_path = "/scim/v2"\n'
        '[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
        f'[connector]\ntype = "webhook"\nurl = "sqlite+aiosqlite:///{tmp_path}/store.db"\n'
        f'webhooks = ["audit"]\n{_audit(receiver, settings)}\n'
        "[events]\npoll_interval = 0.1\n"
    )
    return path


def _events(database: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT type, resource_id, status FROM scim_bridge_events ORDER BY sequence"
        )
        return [tuple(row) for row in rows]


async def _until(check: Any, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("trouble", ["refuses", "is slow"])
async def test_a_receiver_told_of_groups_only_is_not_asked_about_a_user_deletion(
    trouble: str,
    sqlite_direct: SqlDirect,
    receiver: Receiver,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client's change is the user's deletion, of which the receiver hears nothing:
    the group it leaves is a follower, told afterwards from the outbox. Asked about it
    within the request, the receiver failed the DELETE (502 when it refused, 503 when
    slow) and the user stayed."""
    scim = await serve(
        sqlite_direct,
        tmp_path,
        aiohttp_client,
        monkeypatch,
        extra=_audit(receiver, "timeout = 0.5\nretry_initial = 0.05\nretry_max = 0.1\n")
        + '[groups]\nnotify = ["audit"]\n[events]\npoll_interval = 0.1\n',
        environ=ENV,
    )
    alice = (await scim.create_user("alice"))["id"]
    group = await scim.post(
        "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "g1", "members": [{"value": alice}]}
    )
    assert group.status == 201, group.body
    assert [a.type for a in receiver.delivered()] == ["group.created"]
    if trouble == "refuses":
        receiver.answer = lambda arrival, n: (400, {})
    else:
        receiver.delay = 2.0
    deleted = await scim.delete(f"/Users/{alice}")
    assert deleted.status == 204, deleted.body
    assert (await scim.get(f"/Users/{alice}")).status == 404
    members = (await scim.get(f"/Groups/{group.body['id']}")).body.get("members", [])
    assert members == []
    rows = await sqlite_direct.rows("SELECT type FROM scim_bridge_events ORDER BY sequence")
    assert [row["type"] for row in rows] == ["group.created", "group.members_removed"]


@pytest.mark.parametrize(
    ("sent", "passed_on"),
    [
        ("99999999999", CLIENT_WAIT_MAX),
        ("Thu, 01 Jan 2099 00:00:00 GMT", CLIENT_WAIT_MAX),
        ("0", 1),
        ("7", 7),
        (None, 5),
    ],
)
async def test_a_receivers_retry_after_reaches_the_client_within_bounds(
    sent: str | None, passed_on: int, receiver: Receiver, tmp_path: Path, aiohttp_client: Any
) -> None:
    scim = await serve_config(_own_store(tmp_path, receiver, ""), aiohttp_client, None, ENV)
    receiver.answer = lambda arrival, n: (503, {"Retry-After": sent} if sent else {})
    busy = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "alice"})
    assert busy.status == 503, busy.body
    assert busy.headers["Retry-After"] == str(passed_on)


def test_client_wait_bounds() -> None:
    assert client_wait(float("inf")) == CLIENT_WAIT_MAX
    assert client_wait(0.2) == 1
    assert client_wait(2.5) == 3
    assert parse_retry_after("\N{SUPERSCRIPT TWO}") is None  # a digit float() refuses


def _replayed(arrivals: list[Arrival]) -> dict[str, str]:
    """User id -> userName, as a receiver that applies each event in turn holds them."""
    users: dict[str, str] = {}
    for arrival in arrivals:
        resource = arrival.body["data"]["resource"]
        if arrival.type == "user.deleted":
            users.pop(arrival.resource_id, None)
        else:
            users[arrival.resource_id] = resource["userName"]
    return users


async def test_a_receiver_that_took_a_change_too_late_is_put_right(
    receiver: Receiver, tmp_path: Path, aiohttp_client: Any
) -> None:
    """No answer in time: the change is undone (503), but the receiver took it after all.
    It is then told the change did not happen (the created user's deletion, the updated
    user's state as it remains), after one more `timeout`, so that its late work is done
    first; and a later user that SQLite gives the same id reaches it after that."""
    database = tmp_path / "store.db"
    config = _own_store(tmp_path, receiver, "timeout = 0.5\n")
    scim = await serve_config(config, aiohttp_client, None, ENV)
    late = {"on": True}
    receiver.delay_for = lambda arrival: 0.8 if late["on"] else 0.0

    ghost = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "ghost"})
    assert ghost.status == 503, ghost.body
    late["on"] = False  # the receiver is at work on the event: it answers in time again
    await receiver.wait_for(2)
    [created, undone] = receiver.delivered()
    assert (created.type, undone.type) == ("user.created", "user.deleted")
    assert undone.resource_id == created.resource_id
    assert undone.body["data"]["resource"]["userName"] == "ghost"
    assert _replayed(receiver.delivered()) == {}

    async def created_user(name: str) -> str:
        while True:  # 503 while the id SQLite reuses still has an event to deliver
            answer = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": name})
            if answer.status != 503:
                assert answer.status == 201, answer.body
                return str(answer.body["id"])
            await asyncio.sleep(0.1)

    alice = await asyncio.wait_for(created_user("alice"), 10)
    late["on"] = True
    renamed = await scim.patch(
        f"/Users/{alice}", {"op": "replace", "path": "userName", "value": "mallory"}
    )
    assert renamed.status == 503, renamed.body
    late["on"] = False
    await receiver.wait_for(5)
    updates = [a for a in receiver.delivered() if a.type == "user.updated"]
    assert [u.body["data"]["changes"]["userName"] for u in updates] == [
        {"old": "alice", "new": "mallory"},
        {"old": "mallory", "new": "alice"},
    ]
    stored = await scim.get("/Users")
    assert _replayed(receiver.delivered()) == {
        user["id"]: user["userName"] for user in stored.body["Resources"]
    }
    await _until(lambda: all(status == "delivered" for _, _, status in _events(database)))
    assert [kind for kind, _, _ in _events(database)] == [
        "user.deleted",
        "user.created",
        "user.updated",
    ]


async def test_a_receiver_that_refused_or_was_unreachable_is_not_told_again(
    receiver: Receiver, tmp_path: Path, aiohttp_client: Any
) -> None:
    """An answer (400) or a refused connection is certain: nothing was taken, nothing
    needs putting right."""
    database = tmp_path / "store.db"
    config = _own_store(tmp_path, receiver, "timeout = 0.5\n")
    scim = await serve_config(config, aiohttp_client, None, ENV)
    receiver.answer = lambda arrival, n: (400, {})
    refused = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "refused"})
    assert refused.status == 502, refused.body
    await receiver.stop()
    unreachable = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "later"})
    assert unreachable.status == 503, unreachable.body
    await asyncio.sleep(1.2)  # past the `timeout` a correction would wait
    assert _events(database) == []


def _told_to_wait(answer: Any) -> None:
    """A request on a resource whose correction waits for the receiver: 503."""
    assert answer.status == 503, answer.body
    assert answer.body["detail"].endswith(
        "earlier events of this resource to take first; retry later"
    )


async def _b_after_the_correction_of_a(scim: Any, path: str, receiver: Receiver) -> None:
    """PATCH the title to B until the correction of A is delivered (503 until then); the
    receiver is told A, A undone, then B, in that order."""
    for _ in range(100):
        answer = await scim.patch(path, {"op": "replace", "path": "title", "value": "B"})
        if answer.status != 503:
            break
        await asyncio.sleep(0.1)
    assert answer.status == 200, answer.body
    await receiver.wait_for(4)
    titles = [
        a.body["data"]["changes"]["title"] for a in receiver.delivered() if a.type == "user.updated"
    ]
    assert titles == [
        {"old": None, "new": "A"},
        {"old": "A", "new": None},
        {"old": None, "new": "B"},
    ]


async def test_a_request_while_a_correction_is_being_stored_apart_waits_for_it(
    receiver: Receiver, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A correction that could not be stored in the failed request's transaction (the
    connection failed there) is stored by a task of its own, after the rollback: a
    request on the resource that came meanwhile found nothing waiting in the outbox, and
    its event reached the receiver before the correction (which then undid the accepted
    change there). It is answered 503 until the correction is stored."""
    config = _own_store(tmp_path, receiver, "timeout = 0.5\n")
    scim = await serve_config(config, aiohttp_client, None, ENV)
    created = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "ann"})
    assert created.status == 201, created.body
    path = f"/Users/{created.body['id']}"
    store = OutboxJournal._store_later
    release = asyncio.Event()

    async def store_when_released(self: OutboxJournal, *args: Any) -> None:
        await release.wait()
        await store(self, *args)

    async def connection_lost(self: OutboxJournal, transaction: Any) -> bool:
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(OutboxJournal, "put_right_within", connection_lost)
    monkeypatch.setattr(OutboxJournal, "_store_later", store_when_released)
    receiver.delay_for = lambda arrival: 0.8 if arrival.type == "user.updated" else 0.0
    late = await scim.patch(path, {"op": "replace", "path": "title", "value": "A"})
    assert late.status == 503, late.body
    receiver.delay_for = lambda arrival: 0.0
    meanwhile = await scim.patch(path, {"op": "replace", "path": "title", "value": "B"})
    _told_to_wait(meanwhile)
    release.set()
    await receiver.wait_for(3)  # created, A (taken late), its correction
    await _b_after_the_correction_of_a(scim, path, receiver)


async def test_a_change_the_receiver_took_and_the_database_then_failed_is_put_right(
    receiver: Receiver,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The receiver answered 2xx, then the transaction failed (here storing the event it
    took; a commit the database refuses, or a connection it drops, alike): the receiver
    held a created user that does not exist, and nothing told it otherwise."""
    config = _own_store(tmp_path, receiver, "timeout = 0.5\n")
    scim = await serve_config(config, aiohttp_client, None, ENV)
    original = Outbox.append

    async def failing(self: Outbox, connection: Any, events: Any, **kw: Any) -> None:
        if kw.get("delivered"):
            raise ConnectionResetError("the database went away")
        await original(self, connection, events, **kw)

    monkeypatch.setattr(Outbox, "append", failing)
    ghost = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "ghost"})
    assert ghost.status == 503, ghost.body
    monkeypatch.setattr(Outbox, "append", original)
    assert (await scim.get("/Users")).body["totalResults"] == 0
    await receiver.wait_for(2)
    [created, undone] = receiver.delivered()
    assert (created.type, undone.type) == ("user.created", "user.deleted")
    assert undone.resource_id == created.resource_id
    assert "took a change to User" in caplog.text
    assert _replayed(receiver.delivered()) == {}


@pytest.mark.parametrize("then", ["PATCH", "DELETE"])
async def test_a_request_in_another_worker_waits_for_the_correction_of_the_one_before(
    receiver: Receiver,
    sql_url: str,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    then: str,
) -> None:
    """Two workers on one database. A PATCH whose receiver does not answer in time holds
    the user's row until its transaction ends; a PATCH or DELETE of that user in the other
    worker waits for the row meanwhile, then asks whether a correction waits in the
    outbox. The correction is stored in the failed request's own transaction, in the
    place of the change it undoes, so that the row is released only once it can be found:
    the second request is answered 503. Stored apart after the rollback (as it was, here
    held back), it was not there yet: the second change reached the receiver first, and
    the correction then undid it there (the receiver ended at the old state). The
    correction is stored slowly here: a savepoint taken before the row was locked would
    have released it (rolling back to it releases the locks taken since) before the
    correction was stored. The DELETE reads the user's groups before it waits: on
    MariaDB (REPEATABLE READ) that fixed its snapshot, and the outbox read through it
    missed the correction."""
    config = tmp_path / "config.toml"
    config.write_text(
        'mapping = "sql-default"\n[server]\nbase_path = "/scim/v2"\n'
        '[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
        f'[connector]\ntype = "webhook"\nurl = "{sql_url}"\nwebhooks = ["audit"]\n'
        f"{_audit(receiver, 'timeout = 0.5')}\n[events]\npoll_interval = 0.1\n"
    )
    first = await serve_config(config, aiohttp_client, None, ENV)
    second = await serve_config(config, aiohttp_client, None, ENV)
    created = await first.post("/Users", {"schemas": [USER_SCHEMA], "userName": "ann"})
    assert created.status == 201, created.body
    path = f"/Users/{created.body['id']}"
    release, asked = asyncio.Event(), asyncio.Event()
    store = OutboxJournal._store_later

    async def store_when_released(self: OutboxJournal, *args: Any) -> None:
        await release.wait()
        await store(self, *args)

    def slow_for_a(arrival: Arrival) -> float:
        if arrival.body["data"].get("changes", {}).get("title", {}).get("new") != "A":
            return 0.0
        asked.set()
        return 0.8

    append = Outbox.append

    async def slowly_when_due_later(self: Outbox, connection: Any, events: Any, **kw: Any) -> None:
        if kw.get("due") is not None:
            await asyncio.sleep(0.3)
        await append(self, connection, events, **kw)

    monkeypatch.setattr(OutboxJournal, "_store_later", store_when_released)
    monkeypatch.setattr(Outbox, "append", slowly_when_due_later)
    receiver.delay_for = slow_for_a
    late = asyncio.create_task(first.patch(path, {"op": "replace", "path": "title", "value": "A"}))
    await asyncio.wait_for(asked.wait(), 10)
    if then == "PATCH":
        meanwhile = await second.patch(path, {"op": "replace", "path": "title", "value": "B"})
    else:
        meanwhile = await second.delete(path)
    assert (await late).status == 503
    _told_to_wait(meanwhile)
    release.set()
    if then == "PATCH":
        await _b_after_the_correction_of_a(second, path, receiver)
        return
    for _ in range(100):  # 503 until the correction is delivered
        answer = await second.delete(path)
        if answer.status != 503:
            break
        await asyncio.sleep(0.1)
    assert answer.status == 204, answer.body
    await receiver.wait_for(4)
    assert receiver.of(created.body["id"]) == [
        "user.created",
        "user.updated",
        "user.updated",
        "user.deleted",
    ]


async def test_a_failed_write_with_nothing_to_put_right_keeps_its_log_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """MariaDB rolls a deadlocked transaction back whole, its savepoint with it: rolling
    back to the savepoint failed, and every such deadlock logged that a correction could
    not be stored, when no receiver had been asked yet and there was none."""

    class SavepointGone:
        async def rollback(self) -> None:
            raise RuntimeError("SAVEPOINT sa_savepoint_1 does not exist")

    class NothingTaken:
        def holds_taken(self, transaction: Any) -> bool:
            return False

        async def put_right_within(self, transaction: Any) -> bool:
            raise AssertionError("nothing to put right")

    put_right = await _put_right_within(NothingTaken(), None, SavepointGone())  # type: ignore[arg-type]
    assert put_right is False
    assert "could not be stored" not in caplog.text
