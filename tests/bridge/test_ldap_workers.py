"""Several workers in front of one directory: what one worker's writes change, every
worker shows at once.

Each worker keeps a short-lived cache of DN -> (id, display name) (connectors.ldap.directory
.RefCache) so that a page of users or a large group does not cost one directory read per
reference. Run as an admin runs it (`python -m bridge serve` with `workers = 2`) on the
suite's slapd; each client holds a keep-alive connection of its own, which the kernel gives
to one worker or the other, so that sixteen of them reach both workers (all sixteen on one
worker: one chance in 32,768).
"""

from __future__ import annotations

import asyncio
import pathlib
import re
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from scim_client import (
    ENTERPRISE,
    GROUP_SCHEMA,
    LDAP_PASSWORD_ENV,
    TOKEN,
    USER_SCHEMA,
    write_ldap_config,
)
from slapd import SlapdServer
from test_cli import environment, start_serve
from test_workers import eventually, listening_on

HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CONNECTIONS = 16


@pytest.fixture
async def two_workers(slapd: SlapdServer, tmp_path: pathlib.Path) -> AsyncIterator[str]:
    """The base URL of `serve` with two workers on a tree of its own."""
    config = write_ldap_config(tmp_path, slapd, slapd.make_tree(f"workers-{tmp_path.name}"))
    config.write_text(config.read_text().replace("[server]\n", "[server]\nworkers = 2\n", 1))
    env = environment(SCIM_BRIDGE_TEST_TOKEN=TOKEN, **{LDAP_PASSWORD_ENV: slapd.admin_password})
    process = await start_serve(config, env, "--listen", "127.0.0.1:0")
    assert process.stderr is not None
    try:
        while True:
            line = (await asyncio.wait_for(process.stderr.readline(), timeout=30)).decode()
            assert line, "serve exited before serving"
            found = re.search(r"serving SCIM 2.0 at (http://\S+)$", line.rstrip())
            if found:
                break
        port = int(found[1].split(":")[2].split("/")[0])
        await eventually(lambda: len(listening_on(port)) == 2)  # the copy is up too
        yield found[1]
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = await asyncio.wait_for(process.communicate(), timeout=30)
        assert b"shares no forget board" not in log


@pytest.fixture
async def clients() -> AsyncIterator[list[aiohttp.ClientSession]]:
    """Sessions of one keep-alive connection each."""
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), headers=HEADERS)
        for _ in range(CONNECTIONS)
    ]
    try:
        yield sessions
    finally:
        await asyncio.gather(*(session.close() for session in sessions))


async def send(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None, status: int = 200
) -> Any:
    async with session.request(method, url, json=body) as response:
        assert response.status == status, await response.text()
        return await response.json() if response.status != 204 else None


async def seen(clients: list[aiohttp.ClientSession], url: str, read: Any) -> list[Any]:
    """`read(resource)` of the resource at `url` as each connection (each worker) answers."""
    return [read(await send(session, "GET", url)) for session in clients]


def manager_of(user: dict[str, Any]) -> Any:
    return user.get(ENTERPRISE, {}).get("manager", {}).get("value")


def groups_of(user: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((group["value"], group["display"]) for group in user.get("groups", []))


def user(name: str, **more: Any) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": name,
        "name": {"givenName": name.title(), "familyName": "Lovelace"},
        **more,
    }


def replace(path: str, value: Any) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": [{"op": "replace", "path": path, "value": value}]}


async def test_a_manager_deleted_and_made_again_shows_its_new_id_on_every_worker(
    two_workers: str, clients: list[aiohttp.ClientSession]
) -> None:
    url, first = two_workers, clients[0]
    old = (await send(first, "POST", f"{url}/Users", user("boss"), 201))["id"]
    report = user("ada", **{ENTERPRISE: {"manager": {"value": old}}})
    ada = f"{url}/Users/{(await send(first, 'POST', f'{url}/Users', report, 201))['id']}"
    # Every worker reads ada once: each now knows her manager's DN by its first id.
    assert await seen(clients, ada, manager_of) == [old] * CONNECTIONS

    await send(first, "DELETE", f"{url}/Users/{old}", status=204)
    new = (await send(first, "POST", f"{url}/Users", user("boss"), 201))["id"]
    assert new != old
    await send(first, "PATCH", ada, replace(f"{ENTERPRISE}:manager", {"value": new}))

    assert await seen(clients, ada, manager_of) == [new] * CONNECTIONS


async def test_a_group_deleted_and_made_again_shows_its_new_id_on_every_worker(
    two_workers: str, clients: list[aiohttp.ClientSession]
) -> None:
    url, first = two_workers, clients[0]
    member = (await send(first, "POST", f"{url}/Users", user("ada"), 201))["id"]
    group = {"schemas": [GROUP_SCHEMA], "displayName": "team", "members": [{"value": member}]}
    old = (await send(first, "POST", f"{url}/Groups", group, 201))["id"]
    ada = f"{url}/Users/{member}"
    assert await seen(clients, ada, groups_of) == [[(old, "team")]] * CONNECTIONS

    await send(first, "DELETE", f"{url}/Groups/{old}", status=204)
    new = (await send(first, "POST", f"{url}/Groups", group, 201))["id"]
    assert new != old

    assert await seen(clients, ada, groups_of) == [[(new, "team")]] * CONNECTIONS


async def test_if_match_on_a_member_patch_holds_across_workers(
    two_workers: str, clients: list[aiohttp.ClientSession]
) -> None:
    """The directory checks no condition on a member modify: each worker read the version
    If-Match named, then wrote, so that of ten PATCHes at once naming the current version
    two were answered 204, each with a new ETag. Now the group is held by the worker that
    writes it: one PATCH lands, the others are 412."""
    url, first = two_workers, clients[0]
    ids = [(await send(first, "POST", f"{url}/Users", user(f"m{n}"), 201))["id"] for n in range(10)]
    group = {"schemas": [GROUP_SCHEMA], "displayName": "guarded"}
    for round in range(3):
        group["displayName"] = f"guarded{round}"
        created = await send(first, "POST", f"{url}/Groups", group, 201)
        at = f"{url}/Groups/{created['id']}"
        version = created["meta"]["version"]

        statuses = await asyncio.gather(
            *(
                added(session, at, member, if_match=version)
                for session, member in zip(clients, ids, strict=False)
            )
        )
        assert sorted(statuses) == [204] + [412] * 9, (round, statuses)
        held = await send(first, "GET", at)
        assert len(held.get("members", [])) == 1, round


async def test_members_added_while_the_group_is_deleted_leave_no_membership_behind(
    two_workers: str, clients: list[aiohttp.ClientSession]
) -> None:
    """A member PATCH without If-Match holds the group while it writes it: slapd's memberof
    overlay does not keep a member add and the group's deletion apart, and a user added
    as the group went kept the group in its memberOf, where a group made again under the
    name then found it. Each PATCH lands before the delete or finds no group (404)."""
    url, first = two_workers, clients[0]
    users = [user(f"d{n}") for n in range(CONNECTIONS - 1)]
    ids = [(await send(first, "POST", f"{url}/Users", each, 201))["id"] for each in users]
    for round in range(3):
        group = {"schemas": [GROUP_SCHEMA], "displayName": f"doomed{round}"}
        doomed = (await send(first, "POST", f"{url}/Groups", group, 201))["id"]
        at = f"{url}/Groups/{doomed}"

        *statuses, deleted = await asyncio.gather(
            *(added(session, at, member) for session, member in zip(clients, ids, strict=False)),
            deleted_after(clients[-1], at, 0.002 * round),
        )
        assert deleted == 204, round
        assert set(statuses) <= {204, 404}, (round, statuses)
        again = (await send(first, "POST", f"{url}/Groups", group, 201))["id"]
        for member in ids:
            groups = [id for id, _ in groups_of(await send(first, "GET", f"{url}/Users/{member}"))]
            assert again not in groups, (round, member)
            assert doomed not in groups, (round, member)


async def added(
    session: aiohttp.ClientSession, url: str, member: str, *, if_match: str | None = None
) -> int:
    """The status of a PATCH adding `member`, on condition that the group is at the
    version `if_match` names when one is given."""
    body = {
        "schemas": [PATCH],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}],
    }
    headers = {"If-Match": if_match} if if_match is not None else None
    async with session.patch(url, json=body, headers=headers) as response:
        return response.status


async def deleted_after(session: aiohttp.ClientSession, url: str, delay: float) -> int:
    """The status of a DELETE of `url` sent `delay` seconds from now."""
    await asyncio.sleep(delay)
    async with session.delete(url) as response:
        return response.status
