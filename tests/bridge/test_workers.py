"""`server.workers`: several serving processes on one port, kept running, stopped together.

Run as an admin runs it (`python -m bridge serve`) on PostgreSQL (and MariaDB, for writes
that race across workers), since SQLite refuses more than one worker. Which process holds a
listening socket is read from /proc, so each test checks that every worker really accepts
on the port, not only that it exists.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import signal
from collections.abc import AsyncIterator

import aiohttp
import pytest
from backends import create_database, create_default_tables, drop_database
from test_cli import environment, start_serve

TOKEN = "workers-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def served_config(
    tmp_path: pathlib.Path, backend: str, workers: int
) -> AsyncIterator[pathlib.Path]:
    """A configuration of `workers` on a fresh database of `backend` with the default
    tables, dropped afterwards."""
    url = await create_database(backend, tmp_path)
    try:
        await create_default_tables(url)
        path = tmp_path / "config.toml"
        path.write_text(
            f'mapping = "sql-default"\n[server]\nworkers = {workers}\n'
            '[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
            f'[connector]\ntype = "sql"\nurl = "{url}"\n'
        )
        yield path
    finally:
        await drop_database(backend, url)


@pytest.fixture
async def config(tmp_path: pathlib.Path) -> AsyncIterator[pathlib.Path]:
    async for path in served_config(tmp_path, "postgresql", 3):
        yield path


def children(pid: int) -> list[int]:
    try:
        text = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(each) for each in text.split()]


def listening_on(port: int) -> set[int]:
    """The pids holding a socket that listens on 127.0.0.1:`port`."""
    inodes = set()
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(fields[9])
    holders = set()
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        if any(link.startswith("socket:[") and link[8:-1] in inodes for link in links):
            holders.add(int(entry.name))
    return holders


async def eventually(check, within: float = 30.0):  # type: ignore[no-untyped-def]
    """Poll `check()` until it returns something true; that value."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = check()
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def started(path: pathlib.Path) -> tuple[asyncio.subprocess.Process, str, int]:
    process = await start_serve(
        path, environment(SCIM_BRIDGE_TEST_TOKEN=TOKEN), "--listen", "127.0.0.1:0"
    )
    assert process.stderr is not None
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=30)).decode()
        assert line, "serve exited before serving"
        found = re.search(
            r"serving SCIM 2.0 at (http://127\.0\.0\.1:(\d+)/scim/v2)$", line.rstrip()
        )
        if found:
            return process, found[1], int(found[2])


async def status_on_a_fresh_connection(method: str, url: str, body: object = None) -> int:
    """One request on a connection of its own (the kernel spreads them over the workers)."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector, headers=HEADERS) as session,
        session.request(method, url, json=body) as response,
    ):
        return response.status


async def answered_by_fresh_connections(url: str, user_id: str, times: int = 12) -> None:
    """GET the user on `times` new connections, which the kernel spreads over the workers."""
    for _ in range(times):
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(f"{url}/Users/{user_id}", headers=HEADERS) as response,
        ):
            assert response.status == 200
            assert (await response.json())["userName"] == "ada"


async def test_every_worker_listens_a_dead_one_comes_back_and_sigterm_stops_all(
    config: pathlib.Path,
) -> None:
    process, url, port = await started(config)
    try:
        copies = await eventually(lambda: len(children(process.pid)) == 2 and children(process.pid))
        await eventually(lambda: listening_on(port) == {process.pid, *copies})
        async with aiohttp.ClientSession() as session:
            body = {"schemas": [USER], "userName": "ada"}
            async with session.post(f"{url}/Users", json=body, headers=HEADERS) as response:
                assert response.status == 201
                user_id = (await response.json())["id"]
        await answered_by_fresh_connections(url, user_id)

        os.kill(copies[0], signal.SIGKILL)
        replaced = await eventually(
            lambda: (
                len(children(process.pid)) == 2
                and copies[0] not in children(process.pid)
                and children(process.pid)
            )
        )
        await eventually(lambda: listening_on(port) == {process.pid, *replaced})
        await answered_by_fresh_connections(url, user_id)

        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0
        restarted = rf"worker \d \(pid {copies[0]}\) exited with status -9; starting it again"
        assert re.search(restarted, rest.decode())
        assert not any(os.path.exists(f"/proc/{pid}") for pid in replaced)  # noqa: ASYNC240
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_copies_stop_when_the_first_worker_is_killed(config: pathlib.Path) -> None:
    process, _, port = await started(config)
    copies = await eventually(lambda: len(children(process.pid)) == 2 and children(process.pid))
    await eventually(lambda: listening_on(port) == {process.pid, *copies})
    process.kill()  # no SIGTERM: the copies are not told
    await process.wait()
    await eventually(lambda: not listening_on(port), within=15)


async def test_parallel_unconditional_patches_across_workers_all_land(
    config: pathlib.Path,
) -> None:
    # Each PATCH on a connection of its own, which the kernel spreads over the three
    # workers: a write of another process between a PATCH's read and its write is read
    # again, never answered 412 (the client sent no If-Match).
    process, url, _ = await started(config)
    try:
        async with aiohttp.ClientSession() as session:
            body = {"schemas": [USER], "userName": "ada"}
            async with session.post(f"{url}/Users", json=body, headers=HEADERS) as response:
                user_id = (await response.json())["id"]

        async def patch(n: int) -> int:
            operation = {"op": "add", "path": "title", "value": f"title {n}"}
            body = {"schemas": [PATCH], "Operations": [operation]}
            return await status_on_a_fresh_connection("PATCH", f"{url}/Users/{user_id}", body)

        for _ in range(3):
            assert await asyncio.gather(*(patch(n) for n in range(24))) == [200] * 24
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), timeout=30)


@pytest.fixture(params=["mariadb", "postgresql"])
async def two_workers(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> AsyncIterator[pathlib.Path]:
    async for path in served_config(tmp_path, request.param, 2):
        yield path


async def test_members_added_while_their_users_are_deleted_across_workers_are_never_503(
    two_workers: pathlib.Path,
) -> None:
    # A member change locks the group, then the user; a deletion locked the user, then its
    # groups: on MariaDB with two workers, a third of such requests were deadlock victims
    # five times over and answered 503 (15 of each at once). A deletion now locks the
    # user's groups first; a member add that comes second finds the user gone (400).
    process, url, _ = await started(two_workers)
    try:
        for round in range(4):
            async with aiohttp.ClientSession(headers=HEADERS) as session:
                body = {"schemas": [GROUP], "displayName": f"crowd{round}"}
                async with session.post(f"{url}/Groups", json=body) as response:
                    group = (await response.json())["id"]
                users = []
                for n in range(15):
                    body = {"schemas": [USER], "userName": f"crowd{round}-{n}"}
                    async with session.post(f"{url}/Users", json=body) as response:
                        users.append((await response.json())["id"])
                # Some are members already: their deletion has a group to lock.
                already = {"op": "add", "path": "members", "value": [{"value": users[0]}]}
                body = {"schemas": [PATCH], "Operations": [already]}
                async with session.patch(f"{url}/Groups/{group}", json=body) as response:
                    assert response.status in (200, 204)

            def joining(user: str) -> dict[str, object]:
                operation = {"op": "add", "path": "members", "value": [{"value": user}]}
                return {"schemas": [PATCH], "Operations": [operation]}

            statuses = await asyncio.gather(
                *(status_on_a_fresh_connection("DELETE", f"{url}/Users/{user}") for user in users),
                *(
                    status_on_a_fresh_connection("PATCH", f"{url}/Groups/{group}", joining(user))
                    for user in users
                ),
            )
            assert statuses[:15] == [204] * 15
            assert set(statuses[15:]) <= {200, 204, 400}, statuses
            async with (
                aiohttp.ClientSession(headers=HEADERS) as session,
                session.get(f"{url}/Groups/{group}") as response,
            ):
                assert (await response.json()).get("members", []) == []
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), timeout=30)
