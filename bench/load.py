"""The load generator: SCIM requests from concurrent clients on one aiohttp ClientSession.

Each client sends its next request as soon as its last one is answered (a closed loop),
so throughput is what the service sustains with that many requests in flight, and each
request's latency is measured from send to the end of its body. Any unexpected status
fails the run: a fast error is no result.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
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


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers=HEADERS,
        connector=aiohttp.TCPConnector(limit=64),
        timeout=aiohttp.ClientTimeout(total=600),
    )


Send = Callable[[aiohttp.ClientSession, T], Awaitable[Any]]


async def run(items: Sequence[T], send: Send[T], *, clients: int = CLIENTS) -> Timing:
    """`send(session, item)` for every item, from `clients` clients at once."""
    latencies: list[float] = []
    pending = iter(items)

    async def client(http: aiohttp.ClientSession) -> None:
        for item in pending:  # a shared iterator: each item goes to one client
            started = time.perf_counter()
            await send(http, item)
            latencies.append(time.perf_counter() - started)

    async with session() as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - started
    return Timing(seconds, latencies)


async def sequential(items: Sequence[T], operation: Callable[[T], Awaitable[Any]]) -> Timing:
    """A baseline: `operation(item)` for every item, one at a time."""
    latencies: list[float] = []
    started = time.perf_counter()
    for item in items:
        began = time.perf_counter()
        await operation(item)
        latencies.append(time.perf_counter() - began)
    return Timing(time.perf_counter() - started, latencies)


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
