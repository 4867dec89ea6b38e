"""The load generator: SCIM requests from concurrent clients on one aiohttp ClientSession.

Each client sends its next request as soon as its last one is answered (a closed loop),
so throughput is what the service sustains with that many requests in flight, and each
request's latency is measured from send to the end of its body. Any unexpected status
fails the run: a fast error is no result.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from bench.service import TOKEN

CLIENTS = 8
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/scim+json"}

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """The wall time of a run and the latency of each of its requests, in seconds."""

    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies)

    def percentile(self, share: float) -> float:
        """Nearest-rank percentile: the smallest latency at or above `share` of them."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


ROUNDS = 4
"""Rounds a service-against-baseline comparison is cut into (see `side_by_side`)."""


def combined(timings: Sequence[Timing]) -> Timing:
    """Several runs as one: their wall times added, their latencies together."""
    return Timing(
        sum(timing.seconds for timing in timings),
        [latency for timing in timings for latency in timing.latencies],
    )


async def side_by_side(
    one: Callable[[int], Awaitable[Timing]],
    other: Callable[[int], Awaitable[Timing]],
    *,
    rounds: int = ROUNDS,
) -> tuple[Timing, Timing]:
    """Two runs to compare (the service and the baseline, or the service on two data sets),
    in alternating rounds: `one(n)` and `other(n)` for round n, `other` first in the
    even rounds and second in the odd ones; their timings over all rounds.

    A shared machine's speed drifts (other guests, the hypervisor taking CPU time): one
    long run of each would put a slow minute on one side only; in rounds it falls on both.
    """
    one_runs: list[Timing] = []
    other_runs: list[Timing] = []
    for n in range(rounds):
        if n % 2 == 0:
            other_runs.append(await other(n))
            one_runs.append(await one(n))
        else:
            one_runs.append(await one(n))
            other_runs.append(await other(n))
    return combined(one_runs), combined(other_runs)


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers=HEADERS,
        connector=aiohttp.TCPConnector(limit=64),
        timeout=aiohttp.ClientTimeout(total=600),
    )


Send = Callable[[aiohttp.ClientSession, T], Awaitable[Any]]


async def run(
    items: Sequence[T],
    send: Send[T],
    *,
    clients: int = CLIENTS,
    http: aiohttp.ClientSession | None = None,
) -> Timing:
    """`send(session, item)` for every item, from `clients` clients at once, on `http`
    (its connections kept from an earlier run) or on a session of their own."""
    if http is None:
        async with session() as own:
            return await run(items, send, clients=clients, http=own)
    latencies: list[float] = []
    pending = iter(items)

    async def client(http: aiohttp.ClientSession) -> None:
        for item in pending:  # a shared iterator: each item goes to one client
            started = time.perf_counter()
            await send(http, item)
            latencies.append(time.perf_counter() - started)

    with without_collector_pauses():
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return Timing(time.perf_counter() - started, latencies)


async def sequential(items: Sequence[T], operation: Callable[[T], Awaitable[Any]]) -> Timing:
    """A baseline: `operation(item)` for every item, one at a time."""
    latencies: list[float] = []
    with without_collector_pauses():
        started = time.perf_counter()
        for item in items:
            began = time.perf_counter()
            await operation(item)
            latencies.append(time.perf_counter() - began)
        return Timing(time.perf_counter() - started, latencies)


@contextmanager
def without_collector_pauses() -> Iterator[None]:
    """The benchmark's own garbage collector off while it measures.

    The benchmark process holds the data sets (100,000 names and more); a full collection
    of it stops every client at once for tens of milliseconds, which would be counted as
    the service's latency (seen as clusters of 8 slow requests in scenario 2's tail).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    status: int = 200,
    body: dict[str, Any] | None = None,
) -> Any:
    """One request; its JSON answer (None for an empty one). Another status fails the run."""
    headers = {"Content-Type": "application/scim+json"} if body is not None else None
    async with http.request(method, url, json=body, headers=headers) as response:
        raw = await response.read()
        if response.status != status:
            raise AssertionError(
                f"{method} {url}: expected {status}, got {response.status}: {raw[:500]!r}"
            )
        return json.loads(raw) if raw else None
