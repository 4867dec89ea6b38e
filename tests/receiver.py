"""A real webhook receiver on 127.0.0.1 for the tests: it checks every signature.

It can be taken down (the port then refuses connections) and brought back on the same
port, answer with chosen statuses, and take its time; it records what arrived, and any
event that arrived while the same event was still being delivered (which a receiver
must never see from one sender).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from ports import free_port

from connectors.webhook.signing import secret_key, verify

SECRET = "whsec_" + base64.b64encode(b"receiver-test-key-0123456789abcdef").decode()


@dataclass
class Arrival:
    id: str
    type: str
    resource_id: str
    body: dict[str, Any]


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    delay: float = 0.0
    """Seconds each answer takes."""
    delay_for: Callable[[Arrival], float] | None = None
    """Seconds the answer to this arrival takes, instead of `delay`."""
    answer: Callable[[Arrival, int], tuple[int, dict[str, str]]] = lambda arrival, n: (204, {})
    """(status, headers) for the n-th arrival (1-based) of each event id."""
    arrivals: list[Arrival] = field(default_factory=list)
    unsigned: int = 0
    overlapping: list[str] = field(default_factory=list)
    """Event ids that arrived while a delivery of the same id was under way."""
    _attempts: dict[str, int] = field(default_factory=dict)
    _in_flight: set[str] = field(default_factory=set)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/events", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not verify(secret_key(SECRET), request.headers, raw):
            self.unsigned += 1
            return web.Response(status=401)
        body = json.loads(raw)
        arrival = Arrival(request.headers["webhook-id"], body["type"], body["data"]["id"], body)
        if arrival.id in self._in_flight:
            self.overlapping.append(arrival.id)
        self._in_flight.add(arrival.id)
        try:
            self._attempts[arrival.id] = self._attempts.get(arrival.id, 0) + 1
            delay = self.delay_for(arrival) if self.delay_for else self.delay
            if delay:
                await asyncio.sleep(delay)
            status, headers = self.answer(arrival, self._attempts[arrival.id])
            if 200 <= status < 300:
                self.arrivals.append(arrival)
                self._arrived.set()
            return web.Response(status=status, headers=headers)
        finally:
            self._in_flight.discard(arrival.id)

    def delivered(self) -> list[Arrival]:
        """Each event once, in the order of first arrival (deliveries are at least once)."""
        seen: dict[str, Arrival] = {}
        for arrival in self.arrivals:
            seen.setdefault(arrival.id, arrival)
        return list(seen.values())

    def of(self, resource_id: str) -> list[str]:
        """The types of one resource's events, in the order they arrived."""
        return [a.type for a in self.delivered() if a.resource_id == resource_id]

    async def wait_for(self, count: int, within: float = 30.0) -> None:
        """Until `count` distinct events have arrived; AssertionError after `within` s."""
        try:
            async with asyncio.timeout(within):
                while len(self.delivered()) < count:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise AssertionError(f"{len(self.delivered())} of {count} events arrived") from None
