"""Delivering events: one signed POST per event, retried until delivered or too old.

2xx delivers. 408, 429 and 5xx, a timeout or a refused connection are retried after an
exponential, jittered delay (tenacity's wait strategy; the attempt count lives in the
outbox row, so retries survive a restart), or after Retry-After when a 429 or 503 gives
one. Any other answer (4xx, a redirect) fails the event at once: repeating the same
request cannot change the answer. An event older than `max_age` fails (dead letter);
`scim-bridge events retry` brings it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import tenacity
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.sql.engine import live_connection
from connectors.webhook.outbox import Outbox, StoredEvent
from connectors.webhook.settings import WebhookSettings
from connectors.webhook.signing import signed_headers
from connectors.webhook.status import Status

log = logging.getLogger("scim_bridge.webhook")

USER_AGENT = "scim-bridge-webhooks/1"
ANSWER_READ = 64 * 1024
"""Bytes of a receiver's answer read, so that its connection can serve the next event;
the status decides, so a longer answer is not read at all: the connection is closed
(a receiver, or whatever answers at its URL, could otherwise send gigabytes to memory)."""
LAST_ATTEMPT_LEAD = 1.0
"""Seconds before max_age (beyond a poll interval) the last attempt is due, so that a
claim made at the next poll, a little late, still sends it."""

_RETRIED = frozenset({408, 429})
LOST = "connection lost"
"""A connection that ended after it was made: the event may have been sent."""


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    retry: bool
    """Not delivered, but worth another attempt."""
    retry_after: float | None = None
    """Seconds the receiver asked to wait (Retry-After of a 429 or 503)."""
    error: str | None = None
    """What went wrong, for `events list` and the log: never the body or a secret."""
    indeterminate: bool = False
    """Sent, or perhaps sent, and not answered (a timeout, a connection lost): the
    receiver may have taken the event all the same."""


class Receiver:
    """One `[webhooks.NAME]`: signs and posts event bodies to its URL."""

    def __init__(self, name: str, settings: WebhookSettings, key: bytes) -> None:
        self.name = name
        self.settings = settings
        self._key = key
        self._session: aiohttp.ClientSession | None = None
        self._wait = tenacity.wait_exponential_jitter(
            multiplier=settings.retry_initial,
            max=settings.retry_max,
            jitter=settings.retry_initial,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, event_id: str, body: str) -> Outcome:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout)
            )
        payload = body.encode()
        headers = {
            **signed_headers(self._key, event_id, payload),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            async with self._session.post(
                self.settings.url, data=payload, headers=headers, allow_redirects=False
            ) as response:
                await _discard_answer(response)
                return classify(response.status, response.headers.get("Retry-After"))
        except aiohttp.ConnectionTimeoutError:  # before TimeoutError: it is one
            return Outcome(False, True, error="cannot connect in time")
        except TimeoutError:
            return Outcome(False, True, error="no answer in time", indeterminate=True)
        except aiohttp.ClientConnectionError as error:
            problem = _connection_problem(error)
            return Outcome(False, True, error=problem, indeterminate=problem == LOST)
        except aiohttp.ClientError as error:  # an answer that is not HTTP: it was sent
            return Outcome(False, True, error=type(error).__name__, indeterminate=True)

    def delay(self, attempts: int) -> float:
        """The wait before attempt `attempts + 1`, exponential with jitter."""
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = max(attempts, 1)
        return float(self._wait(state))


async def _discard_answer(response: aiohttp.ClientResponse) -> None:
    """Read and drop up to ANSWER_READ bytes of the body; close the connection on more."""
    left = ANSWER_READ
    while left > 0:
        chunk = await response.content.read(left)
        if not chunk:
            return
        left -= len(chunk)
    if not response.content.at_eof():
        response.close()


def classify(status: int, retry_after: str | None) -> Outcome:
    if 200 <= status < 300:
        return Outcome(True, False)
    if status in _RETRIED or status >= 500:
        wait = parse_retry_after(retry_after) if status in (429, 503) else None
        return Outcome(False, True, wait, f"HTTP {status}")
    return Outcome(False, False, error=f"HTTP {status}")


def parse_retry_after(value: str | None) -> float | None:
    """RFC 9110 §10.2.3: a number of seconds, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit that float() refuses
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _connection_problem(error: aiohttp.ClientConnectionError) -> str:
    cause = error.os_error if isinstance(error, aiohttp.ClientConnectorError) else error
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "cannot connect"
    return LOST


class DeliveryWorker:
    """Delivers one receiver's due events, in a loop, until stopped.

    Up to `concurrency` deliveries are under way at once, each to a different resource
    (only the head of a resource's line is due), and each is recorded as soon as its
    answer comes: a slow answer for one resource holds back that resource alone, while
    the other lanes go on with the next due events.

    With `lock` (PostgreSQL, MariaDB), each delivery claims its event FOR UPDATE SKIP
    LOCKED and keeps it locked, in its own transaction, while it is delivered: no other
    process delivers it meanwhile, and a process that dies releases it. Without it
    (SQLite, one process), the event is read, delivered, then its outcome written; the
    events under way are left out of the next claims.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        receiver: Receiver,
        *,
        lock: bool,
        poll_interval: float,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._receiver = receiver
        self._lock = lock
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lanes: set[asyncio.Task[None]] = set()
        self._under_way: set[int] = set()
        """Sequences of the events being delivered by this worker."""

    def wake(self) -> None:
        """New events may be due: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        try:
            while True:
                try:
                    started = await self._fill()
                except asyncio.CancelledError:
                    raise
                except Exception:  # the loop must outlive a database hiccup
                    log.exception("delivering to %s failed; trying again", self._receiver.name)
                    started = 0
                if started:
                    continue
                self._wake.clear()
                woken = asyncio.ensure_future(self._wake.wait())
                try:
                    # A lane that ends frees a place; a write or the poll brings events.
                    await asyncio.wait(
                        {woken, *self._lanes},
                        timeout=self._poll_interval,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    woken.cancel()
        finally:
            for lane in self._lanes:
                lane.cancel()
            await asyncio.gather(*self._lanes, return_exceptions=True)

    async def _fill(self) -> int:
        """Start a lane for each due event a free place can take; how many started."""
        free = self._receiver.settings.concurrency - len(self._lanes)
        if free <= 0:
            return 0
        # With `lock`, a look that skips what other processes hold (their deliveries
        # under way), released at once: each lane claims its event again, locked.
        async with live_connection(self._engine) as connection, connection.begin():
            due = await self._outbox.claim(
                connection,
                self._receiver.name,
                free,
                lock=self._lock,
                excluding=self._under_way,
            )
        for event in due:
            self._under_way.add(event.sequence)
            lane = asyncio.get_running_loop().create_task(self._lane(event))
            self._lanes.add(lane)
            lane.add_done_callback(self._lanes.discard)
        return len(due)

    async def _lane(self, event: StoredEvent) -> None:
        try:
            if self._lock:
                await self._deliver_locked(event)
            else:
                outcome = await self._sent(event)
                async with live_connection(self._engine) as connection, connection.begin():
                    await self._record(connection, event, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:  # the event stays pending: the next claim brings it again
            log.exception("delivering an event to %s failed", self._receiver.name)
        finally:
            self._under_way.discard(event.sequence)

    async def _deliver_locked(self, seen: StoredEvent) -> None:
        """Claim the event again, locked, deliver it and record the outcome in one
        transaction; another process that took it first leaves nothing to do."""
        async with live_connection(self._engine) as connection, connection.begin():
            claimed = await self._outbox.claim_one(connection, seen.webhook, seen.sequence)
            if claimed is None:
                return
            outcome = await self._sent(claimed)
            await self._record(connection, claimed, outcome)

    async def _sent(self, event: StoredEvent) -> Outcome:
        """The event sent to the receiver, unless it is older than `max_age` already (it
        waited behind a slow delivery, or the service was down): then it fails unsent."""
        if time.time() - event.created > self._receiver.settings.max_age:
            return Outcome(False, False, error="older than max_age; not sent")
        return await self._receiver.send(event.id, event.body)

    async def _record(
        self, connection: AsyncConnection, event: StoredEvent, outcome: Outcome
    ) -> None:
        """The event delivered, due again after a wait, or failed (too old, or refused)."""
        attempts = event.attempts + 1
        if outcome.delivered:
            await self._outbox.finish(
                connection, event.sequence, Status.DELIVERED, attempts=attempts
            )
            return
        # Retry-After is the least wait (RFC 9110 §10.2.3), never a reason to retry
        # sooner than the backoff: `Retry-After: 0` must not make a busy loop.
        now = time.time()
        least = outcome.retry_after or 0.0
        wait = max(least, self._receiver.delay(attempts))
        # An event fails once max_age has passed, not when the backoff's next wait would
        # end after it: the last attempt goes just before (unless the receiver asked for
        # longer than is left). A retry_max of 600 gave up up to ten minutes early.
        max_age = self._receiver.settings.max_age
        # Due events are found at the next poll: the lead covers the poll interval too.
        lead = min(LAST_ATTEMPT_LEAD + self._poll_interval, max_age / 10)
        latest = event.created + max_age - lead
        too_old = latest <= now + least
        if outcome.retry and not too_old:
            await self._outbox.finish(
                connection,
                event.sequence,
                Status.PENDING,
                attempts=attempts,
                due=min(now + wait, latest),
                error=outcome.error,
            )
            return
        error = outcome.error if not outcome.retry else f"{outcome.error}; too old to retry"
        log.warning("event %s to %s failed: %s", event.id, self._receiver.name, error)
        await self._outbox.finish(
            connection, event.sequence, Status.FAILED, attempts=attempts, error=error
        )
