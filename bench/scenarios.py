"""The seven scenarios. Each measures the service and the direct baseline in the same run,
on the same data, and returns Result rows: both figures, their ratio, and the target.

Every measurement is preceded by a short untimed warm-up on both sides (connections,
caches, SQLAlchemy's compiled statements), so that neither pays a cold start the other
does not. Targets that compare two latencies use medians: other work on the machine
disturbs single requests, and a median is what such a disturbance moves least.
"""

from __future__ import annotations

import random
import statistics
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.direct import Direct
from bench.load import (
    CLIENTS,
    ROUNDS,
    Timing,
    call,
    combined,
    run,
    sequential,
    session,
    side_by_side,
    without_collector_pauses,
)
from bench.service import MemoryWatch, Service

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEMORY_LIMIT_MB = 200.0
PAGE = 100
BIG, SMALL = "big-group", "small-group"


@dataclass(frozen=True)
class Sizes:
    """How much each scenario does; `quick()` is a smoke run of a minute or two."""

    creates: int = 2000
    lookups: int = 2000
    small: int = 1000
    large: int = 100_000
    big_group: int = 50_000
    small_group: int = 10
    patches: int = 30
    sync_users: int = 10_000
    sync_groups: int = 100

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            creates=200,
            lookups=300,
            small=1000,
            large=5000,
            big_group=2000,
            patches=5,
            sync_users=300,
            sync_groups=10,
        )


@dataclass
class Result:
    """One row of the table: the service's figure, the baseline's, and the target."""

    scenario: int
    title: str
    backend: str
    ratio: float | None
    target: str
    met: bool | None
    """None for a row that only informs."""
    service: str
    baseline: str = ""
    note: str = ""


@dataclass
class Served:
    """A loaded data set: the service on it, the baseline on it, and its users' names."""

    backend: str
    service: Service
    direct: Direct
    users: list[str]
    groups: dict[str, list[str]] = field(default_factory=dict)


def user_body(name: str) -> dict[str, Any]:
    """A user as an identity provider creates one."""
    return {
        "schemas": [USER],
        "userName": name,
        "active": True,
        "name": {"givenName": name, "familyName": "Bench"},
        "displayName": f"{name} Bench",
        "title": "Engineer",
        "emails": [{"type": "work", "value": f"{name}@example.com", "primary": True}],
    }


def filtered(service: Service, endpoint: str, attribute: str, value: str, extra: str = "") -> str:
    expression = urllib.parse.quote(f'{attribute} eq "{value}"', safe="")
    return f"{service.url}/{endpoint}?filter={expression}{extra}"


def add_members(*ids: str) -> dict[str, Any]:
    """PATCH adding members, one value each, as Entra and Okta send it."""
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in ids]}],
    }


async def scim_id(http: aiohttp.ClientSession, service: Service, endpoint: str, name: str) -> str:
    """A resource's id by its name (setting a scenario up, not timed)."""
    attribute = "userName" if endpoint == "Users" else "displayName"
    extra = "&excludedAttributes=members" if endpoint == "Groups" else ""
    found = await call(http, "GET", filtered(service, endpoint, attribute, name, extra))
    [resource] = found["Resources"]
    return str(resource["id"])


def _backend_extra(extra: float, small_median: float) -> str:
    """Scenario 5's note on what the backend alone adds to a write of the large group."""
    if extra < 0.00005:  # what _ms would show as 0.0 ms, or less
        return "the backend writes to the large group as fast as to the small one"
    share = extra / small_median
    return (
        f"the backend's own extra time per write, {_ms(extra)}, is {share:.2f} of the "
        "10-group median"
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _rate(timing: Timing, unit: str) -> str:
    return f"{timing.rate:,.0f} {unit}/s"


# --- 1. Create users -----------------------------------------------------------------


WARM = 2 * CLIENTS
"""Untimed requests before each round of scenarios 1 and 2: the other side's round left
the backend connections idle, and a connection idle for a while is checked (a ping)
before its next use; that belongs to no steady throughput."""


async def create_users(served: Served, sizes: Sizes) -> list[Result]:
    """POST /Users from 8 clients against ldap3 add / INSERT ... RETURNING one at a time,
    in alternating rounds."""
    direct, service = served.direct, served.service

    async def post(http: aiohttp.ClientSession, name: str) -> None:
        await call(http, "POST", f"{service.url}/Users", status=201, body=user_body(name))

    def names(prefix: str, round: int, count: int = sizes.creates // ROUNDS) -> list[str]:
        return [f"{prefix}-{round}-{n}" for n in range(count)]

    async with session() as http:  # the clients' connections kept across the rounds

        async def service_round(round: int) -> Timing:
            await run(names("warm-s", round, WARM), post, http=http)  # untimed, see WARM
            return await run(names("scim", round), post, http=http)

        async def baseline_round(round: int) -> Timing:
            await sequential(names("warm-d", round, WARM), direct.create_user)
            return await sequential(names("direct", round), direct.create_user)

        timing, baseline = await side_by_side(service_round, baseline_round)
    ratio = timing.rate / baseline.rate
    return [
        Result(
            1,
            f"create {sizes.creates:,} users",
            served.backend,
            ratio,
            ">= 1.0",
            ratio >= 1.0,
            _rate(timing, "users"),
            _rate(baseline, "users"),
            f"service p50 {_ms(timing.percentile(0.5))}, p99 {_ms(timing.percentile(0.99))}",
        ),
    ]


# --- 2 and 3. Look a user up by userName ------------------------------------------------


Round = Callable[[int], Awaitable[Timing]]


def _lookup_rounds(
    served: Served, sizes: Sizes, http: aiohttp.ClientSession
) -> tuple[Round, Round]:
    """A round of the service's lookups (on `http`, from 8 clients) and one of the
    baseline's, each of random existing users after an untimed warm-up (see WARM)."""
    direct, service = served.direct, served.service
    chooser = random.Random(len(served.users))

    async def get(http: aiohttp.ClientSession, name: str) -> None:
        found = await call(http, "GET", filtered(service, "Users", "userName", name))
        if found["totalResults"] != 1:
            raise AssertionError(f"userName eq {name!r}: {found['totalResults']} results")

    async def find(name: str) -> None:
        if await direct.find_user(name) != 1:
            raise AssertionError(f"the baseline did not find {name!r}")

    def names(count: int) -> list[str]:
        return [chooser.choice(served.users) for _ in range(count)]

    async def service_round(_: int) -> Timing:
        await run(names(WARM), get, http=http)
        return await run(names(sizes.lookups // ROUNDS), get, http=http)

    async def baseline_round(_: int) -> Timing:
        await sequential(names(WARM), find)
        return await sequential(names(sizes.lookups // ROUNDS), find)

    return service_round, baseline_round


async def lookups(served: Served, sizes: Sizes) -> tuple[Timing, Timing]:
    """GET /Users?filter=userName eq "..." for random existing users, and the baseline's
    lookups of other random users, in alternating rounds: the service's timing and the
    baseline's."""
    async with session() as http:  # the clients' connections kept across the rounds
        return await side_by_side(*_lookup_rounds(served, sizes, http))


async def growth(small: Served, large: Served, sizes: Sizes) -> list[Result]:
    """The same lookups on 100,000 users and on 1,000, in alternating rounds (the two
    services', then the two baselines'), so that the machine's drift falls on both sizes."""
    async with session() as on_small, session() as on_large:
        service_small, direct_small = _lookup_rounds(small, sizes, on_small)
        service_large, direct_large = _lookup_rounds(large, sizes, on_large)
        large_timing, small_timing = await side_by_side(service_large, service_small)
        large_direct, small_direct = await side_by_side(direct_large, direct_small)
    return growth_results(small, large, (small_timing, small_direct), (large_timing, large_direct))


def lookup_results(served: Served, timing: Timing, baseline: Timing) -> list[Result]:
    ratio = timing.rate / baseline.rate
    p50, p99 = timing.percentile(0.5), timing.percentile(0.99)
    return [
        Result(
            2,
            f"lookup by userName ({len(served.users):,} users)",
            served.backend,
            ratio,
            ">= 0.8",
            ratio >= 0.8,
            _rate(timing, "lookups"),
            _rate(baseline, "lookups"),
        ),
        Result(
            2,
            "lookup latency p99 / p50",
            served.backend,
            p99 / p50,
            "<= 3",
            p99 <= 3 * p50,
            f"p50 {_ms(p50)}, p99 {_ms(p99)}",
            f"p50 {_ms(baseline.percentile(0.5))}, p99 {_ms(baseline.percentile(0.99))}",
        ),
    ]


def growth_results(
    small: Served, large: Served, on_small: tuple[Timing, Timing], on_large: tuple[Timing, Timing]
) -> list[Result]:
    service_small, service_large = on_small[0].percentile(0.5), on_large[0].percentile(0.5)
    direct_small, direct_large = on_small[1].percentile(0.5), on_large[1].percentile(0.5)
    ratio = service_large / service_small
    return [
        Result(
            3,
            f"lookup latency, {len(large.users):,} / {len(small.users):,} users",
            small.backend,
            ratio,
            "<= 1.3",
            ratio <= 1.3,
            f"p50 {_ms(service_large)} / {_ms(service_small)}",
            f"p50 {_ms(direct_large)} / {_ms(direct_small)} = {direct_large / direct_small:.2f}",
            "the ratio is the service's; the baseline's own is in its column",
        ),
    ]


# --- 4. Page through every user ---------------------------------------------------------


async def paging(served: Served, sizes: Sizes) -> list[Result]:
    """Every user, count=100 at startIndex 1, 101, 201, ... from one client; memory sampled
    all along (the baseline's paging included, the service idle then)."""
    direct, service, total = served.direct, served.service, len(served.users)
    url = f"{service.url}/Users?count={PAGE}&startIndex="
    with MemoryWatch(service) as memory:
        async with session() as http:
            for _ in range(3):  # warm-up, untimed
                await call(http, "GET", url + "1")
        direct_pages = await direct.page(PAGE)
        times: list[float] = []
        counts: list[int] = []
        totals: set[int] = set()
        async with session() as http:
            for start in range(1, total + 1, PAGE):
                started = time.perf_counter()
                page = await call(http, "GET", f"{url}{start}")
                times.append(time.perf_counter() - started)
                counts.append(len(page.get("Resources", [])))
                totals.add(page["totalResults"])
    expected = [min(PAGE, total - start) for start in range(0, total, PAGE)]
    direct_total = sum(seconds for seconds, _ in direct_pages)
    direct_read = sum(count for _, count in direct_pages)
    full = counts == expected and totals == {total} and direct_read == total
    short = [n for n, (got, want) in enumerate(zip(counts, expected, strict=True)) if got != want]
    first, last = statistics.fmean(times[:10]), statistics.fmean(times[-10:])
    direct_first = statistics.fmean(seconds for seconds, _ in direct_pages[:10])
    direct_last = statistics.fmean(seconds for seconds, _ in direct_pages[-10:])
    note = f"{len(times):,} pages; totalResults {sorted(totals)}"
    if short:
        note += f"; {len(short)} pages not full, the first at startIndex {short[0] * PAGE + 1}"
    backend = served.backend
    return [
        Result(
            4,
            f"paging {total:,} users: every page full",
            backend,
            None,
            "all full",
            full,
            f"{sum(times):,.1f} s in all",
            f"{direct_total:,.1f} s in all",
            note,
        ),
        Result(
            4,
            "paging: total time vs baseline",
            backend,
            sum(times) / direct_total,
            "-",
            None,
            f"{sum(times):,.1f} s",
            f"{direct_total:,.1f} s",
            "LDAP: paged results; SQL: keyset",
        ),
        Result(
            4,
            "paging: last 10 pages / first 10",
            backend,
            last / first,
            "<= 2",
            last <= 2 * first,
            f"{_ms(last)} / {_ms(first)}",
            f"{_ms(direct_last)} / {_ms(direct_first)}",
        ),
        Result(
            4,
            "paging: peak memory (PSS of all workers)",
            backend,
            memory.peak / MEMORY_LIMIT_MB,
            "<= 1 (200 MB)",
            memory.peak <= MEMORY_LIMIT_MB,
            f"{memory.peak:,.0f} MB",
            "",
            f"{memory.start:,.0f} MB before; VmRSS summed {memory.peak_rss:,.0f} MB; "
            f"{memory.samples} samples",
        ),
    ]


# --- 5 and 6. A group of 50,000 members ---------------------------------------------------


ROUND = 5 * CLIENTS
"""PATCHes to one group in a round of scenario 5: several writes' worth from 8 clients."""


async def member_adds(served: Served, sizes: Sizes) -> list[Result]:
    """One member added per PATCH, from 8 clients at once (the issue's default), to the
    50,000 group and to the 10 group in alternating rounds of 40 (the one first in a round
    second in the next), so that drift on the machine falls on both; the figure is the
    median latency. The PATCH is exactly what an identity
    provider sends, and the service answers it 204 No Content with the new ETag; a second
    pass with excludedAttributes=members asks for the group back (200, without its
    members) to show what an answer adds. The direct baseline adds one at a time."""
    direct, service = served.direct, served.service
    in_groups = {name for members in served.groups.values() for name in members}
    outside = [name for name in reversed(served.users) if name not in in_groups]
    per_group = sizes.patches * CLIENTS  # timed PATCHes to each group
    rounds = max(1, per_group // ROUND)
    warmup = CLIENTS
    needed = 2 * (warmup + per_group)
    scim_users, lean_users = outside[:needed], outside[needed : 2 * needed]
    direct_users = outside[2 * needed : 2 * needed + 2 * (2 + sizes.patches)]
    async with session() as http:
        big = await scim_id(http, service, "Groups", BIG)
        small = await scim_id(http, service, "Groups", SMALL)
        ids = {
            name: await scim_id(http, service, "Users", name) for name in [*scim_users, *lean_users]
        }

    async def patched(query: str, users: list[str]) -> dict[str, list[float]]:
        status = 200 if query else 204
        remaining = iter(users)

        async def to(group: str, count: int) -> Timing:
            async def send(http: aiohttp.ClientSession, name: str) -> None:
                url = f"{service.url}/Groups/{group}{query}"
                await call(http, "PATCH", url, status=status, body=add_members(ids[name]))

            return await run([next(remaining) for _ in range(count)], send)

        def count(round: int) -> int:
            return per_group // rounds + (round < per_group % rounds)

        for group in (big, small):
            await to(group, warmup)  # untimed
        on_small, on_big = await side_by_side(
            lambda round: to(small, count(round)),
            lambda round: to(big, count(round)),
            rounds=rounds,
        )
        return {big: on_big.latencies, small: on_small.latencies}

    plain = await patched("", scim_users)
    lean = await patched("?excludedAttributes=members", lean_users)
    refs = {BIG: await direct.find_group(BIG), SMALL: await direct.find_group(SMALL)}
    direct_latency: dict[str, list[float]] = {BIG: [], SMALL: []}
    for n, name in enumerate(direct_users):
        group, user = (BIG, SMALL)[n % 2], await direct.user_ref(name)
        started = time.perf_counter()
        await direct.add_member(refs[group], user)
        if n >= 4:
            direct_latency[group].append(time.perf_counter() - started)

    def median(values: list[float]) -> float:
        return statistics.median(values)

    ratio = median(plain[big]) / median(plain[small])
    lean_ratio = median(lean[big]) / median(lean[small])
    direct_big, direct_small = median(direct_latency[BIG]), median(direct_latency[SMALL])
    # Every PATCH to the large group waits for at least one modify of it: what the backend
    # alone adds to that modify, over the small group's median, is a share of the ratio
    # that the service cannot remove without answering before it writes.
    backend_extra = direct_big - direct_small
    size = f"{sizes.big_group:,} / {sizes.small_group}"
    return [
        Result(
            5,
            f"add a member, group of {size}",
            served.backend,
            ratio,
            "<= 1.5",
            ratio <= 1.5,
            f"p50 {_ms(median(plain[big]))} / {_ms(median(plain[small]))}",
            f"p50 {_ms(direct_big)} / {_ms(direct_small)} = {direct_big / direct_small:.2f}",
            f"{per_group} PATCHes to each from {CLIENTS} clients; the ratio is the service's; "
            "the baseline adds one at a time; "
            + _backend_extra(backend_extra, median(plain[small])),
        ),
        Result(
            5,
            "add a member, answered (excludedAttributes=members)",
            served.backend,
            lean_ratio,
            "-",
            None,
            f"p50 {_ms(median(lean[big]))} / {_ms(median(lean[small]))}",
            "",
            "the same PATCH answered 200 with the group, without its members",
        ),
    ]


async def big_group_read(served: Served, sizes: Sizes) -> list[Result]:
    """GET /Groups/{id} of the 50,000 group, three times, memory sampled all along."""
    direct, service = served.direct, served.service
    ref = await direct.find_group(BIG)
    await direct.read_group(ref)  # warm-up, untimed
    started = time.perf_counter()
    expected = await direct.read_group(ref)
    direct_seconds = time.perf_counter() - started
    times: list[float] = []
    counts: list[int] = []
    async with session() as http:
        group = await scim_id(http, service, "Groups", BIG)
        with MemoryWatch(service) as memory:
            for _ in range(3):
                started = time.perf_counter()
                body = await call(http, "GET", f"{service.url}/Groups/{group}")
                times.append(time.perf_counter() - started)
                counts.append(len(body.get("members", [])))
    seconds = statistics.median(times)
    answered = set(counts) == {expected} and expected >= sizes.big_group
    return [
        Result(
            6,
            f"GET a group of {sizes.big_group:,} members",
            served.backend,
            seconds / direct_seconds,
            "200, all members",
            answered,
            f"{_ms(seconds)}",
            f"{_ms(direct_seconds)}",
            f"{counts[0]:,} members answered, {expected:,} held",
        ),
        Result(
            6,
            "GET the group: peak memory (PSS of all workers)",
            served.backend,
            memory.peak / MEMORY_LIMIT_MB,
            "<= 1 (200 MB)",
            memory.peak <= MEMORY_LIMIT_MB,
            f"{memory.peak:,.0f} MB",
            "",
            f"{memory.start:,.0f} MB before; VmRSS summed {memory.peak_rss:,.0f} MB",
        ),
    ]


# --- 7. An initial sync, as Entra's first cycle sends it ----------------------------------


async def initial_sync(served: Served, sizes: Sizes) -> list[Result]:
    """Users (a lookup answered empty, then POST), groups (the same), then memberships
    (PATCH add, one member each), from 8 clients; the baseline does the same lookups and
    writes one at a time. Objects: users + groups + memberships.

    The sync is cut into alternating rounds as scenarios 1, 2 and 5 are (see
    `side_by_side`): round n syncs its share of the users and groups, each user of it
    made a member of one of its groups, so that a round is a small first cycle of its own
    (users, then groups, then memberships) and every group gets as many members as in one
    long sync. A single long phase of each side would let a slow minute of the machine
    fall on one of them only.
    """
    direct, service = served.direct, served.service
    users, teams = sizes.sync_users, sizes.sync_groups

    def share(total: int, round: int) -> range:
        return range(total * round // ROUNDS, total * (round + 1) // ROUNDS)

    async def direct_round(round: int) -> Timing:
        latencies: list[float] = []

        async def timed(operation: Awaitable[Any]) -> Any:
            began = time.perf_counter()
            outcome = await operation
            latencies.append(time.perf_counter() - began)
            return outcome

        async def user(name: str) -> Any:
            if await direct.find_user(name):
                raise AssertionError(f"{name} exists already")
            return await direct.create_user(name)

        async def group(name: str) -> Any:
            if await direct.find_group(name) is not None:
                raise AssertionError(f"{name} exists already")
            return await direct.create_group(name)

        with without_collector_pauses():
            started = time.perf_counter()
            refs = [await timed(user(f"direct-sync-{n}")) for n in share(users, round)]
            groups = [await timed(group(f"direct-team-{n}")) for n in share(teams, round)]
            for n, ref in enumerate(refs):
                await timed(direct.add_member(groups[n % len(groups)], ref))
            return Timing(time.perf_counter() - started, latencies)

    user_ids: dict[int, str] = {}
    group_ids: dict[int, str] = {}
    phases = [0.0, 0.0, 0.0]

    async def user(http: aiohttp.ClientSession, n: int) -> None:
        name = f"scim-sync-{n}"
        found = await call(http, "GET", filtered(service, "Users", "userName", name))
        if found["totalResults"] != 0:
            raise AssertionError(f"{name} exists already")
        created = await call(http, "POST", f"{service.url}/Users", status=201, body=user_body(name))
        user_ids[n] = created["id"]

    async def group(http: aiohttp.ClientSession, n: int) -> None:
        name = f"scim-team-{n}"
        lookup = filtered(service, "Groups", "displayName", name, "&excludedAttributes=members")
        if (await call(http, "GET", lookup))["totalResults"] != 0:
            raise AssertionError(f"{name} exists already")
        created = await call(
            http,
            "POST",
            f"{service.url}/Groups",
            status=201,
            body={"schemas": [GROUP], "displayName": name},
        )
        group_ids[n] = created["id"]

    async with session() as http:  # the clients' connections kept across the rounds

        async def service_round(round: int) -> Timing:
            its_groups = share(teams, round)

            async def member(http: aiohttp.ClientSession, n: int) -> None:
                team = its_groups[n % len(its_groups)]
                target = f"{service.url}/Groups/{group_ids[team]}"
                await call(http, "PATCH", target, status=204, body=add_members(user_ids[n]))

            timings = [
                await run(share(users, round), user, http=http),
                await run(its_groups, group, http=http),
                await run(share(users, round), member, http=http),
            ]
            for phase, timing in enumerate(timings):
                phases[phase] += timing.seconds
            return combined(timings)

        timing, baseline = await side_by_side(service_round, direct_round)
    rate, direct_rate = timing.rate, baseline.rate
    ratio = rate / direct_rate
    return [
        Result(
            7,
            f"initial sync: {users:,} users, {teams} groups, {users:,} memberships",
            served.backend,
            ratio,
            ">= 0.5",
            ratio >= 0.5,
            f"{rate:,.0f} objects/s",
            f"{direct_rate:,.0f} objects/s",
            f"{ROUNDS} rounds; phases (users, groups, memberships): "
            + ", ".join(f"{seconds:,.1f} s" for seconds in phases),
        ),
    ]
