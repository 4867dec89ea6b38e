"""The journal that turns every write into events in the outbox (connectors.base.Journal).

What an event says is decided by the bridge (`describe`: the SCIM resource after the
change, the attributes that changed); this module only routes events to receivers,
stores them, and has a synchronous receiver take the first event of each request at once
(and, when it may have taken one of a change then undone, tells it so afterwards).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.base import Change, Kind, Rejected, Unavailable
from connectors.sql.engine import live_connection
from connectors.webhook.delivery import Receiver
from connectors.webhook.outbox import NewEvent, Outbox


@dataclass(frozen=True, slots=True)
class EventContent:
    """One event of a change, before it is addressed to receivers."""

    type: str
    """user.created, group.members_added, ..."""
    resource_type: str
    """User or Group (RFC 7643 §3's resource type names)."""
    resource_id: str
    data: dict[str, Any]


Describe = Callable[[Change], list[EventContent]]


@dataclass(frozen=True, slots=True)
class _Taken:
    """A change a synchronous receiver took (`surely`: it answered 2xx) or may have taken
    (no answer in time), while its transaction has not committed."""

    name: str
    change: Change
    engine: AsyncEngine
    surely: bool


STORE_RETRY_AFTER = 5
"""Seconds a client is asked to wait when the events store does not answer."""
RECEIVER_RETRY_AFTER = 5
"""Seconds a client is asked to wait when a synchronous receiver cannot take a change
now and says nothing of when it can."""
CLIENT_WAIT_MAX = 300
"""The longest Retry-After passed on from a synchronous receiver, in seconds."""

log = logging.getLogger("scim_bridge.webhook")


class OutboxJournal:
    """Routes the events of each change to the receivers of its resource type."""

    def __init__(
        self,
        outbox: Outbox,
        describe: Describe,
        routes: Mapping[Kind, list[str]],
        receivers: Mapping[str, Receiver],
        *,
        engine: AsyncEngine | None,
        wake: Callable[[str], None],
    ) -> None:
        """`engine` is the outbox's own database, or None: the connector's transaction."""
        self._outbox = outbox
        self._describe = describe
        self._routes = routes
        self._receivers = receivers
        self._engine = engine
        self._wake = wake
        self._asked: weakref.WeakSet[Any] = weakref.WeakSet()
        """The transactions whose first change (the client's) was recorded already."""
        self._storing: set[asyncio.Task[None]] = set()
        """Events that put a receiver right, being stored (see `_put_right`)."""
        self._agreed: weakref.WeakKeyDictionary[Any, list[_Taken]] = weakref.WeakKeyDictionary()
        """The changes a synchronous receiver took, or may have taken (no answer in time),
        by the connection of the transaction they were recorded in, until it ends: one
        that does not commit them leaves the receiver holding them (`put_right_within`,
        else `abandoned`)."""
        self._undoing: Counter[tuple[str, str, str]] = Counter()
        """(receiver, resource type, id) of those events, until they are stored: a request
        on the resource meanwhile would find nothing waiting in the outbox, and its event
        would reach the receiver before them."""

    @property
    def in_transaction(self) -> bool:
        """Whether events are written in the connector's transaction (no store of their
        own): a connector with transactions then tells inside it, else after its commit."""
        return self._engine is None

    async def ready(self, kinds: Collection[Kind]) -> None:
        """The events' own database answers, when changes of `kinds` make events
        (connectors.base.Journal.ready); in the connector's transaction there is nothing to
        ask: the write and its events commit together or not at all."""
        if self._engine is None or not any(self._routes.get(kind) for kind in kinds):
            return
        engine = self._engine
        if engine.dialect.name == "postgresql":
            # Without a transaction: one round trip, not BEGIN, SELECT and ROLLBACK
            # (asyncpg's autocommit is the client's own; PyMySQL's would cost two more).
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        try:
            async with live_connection(engine) as connection:
                await connection.exec_driver_sql("SELECT 1")
        except (OSError, SQLAlchemyError) as error:
            raise Unavailable(
                "the events store cannot be reached, so the change is not made; retry later",
                retry_after=STORE_RETRY_AFTER,
            ) from error

    async def record(self, changes: list[Change], transaction: Any | None) -> None:
        """Store the events of `changes`; a synchronous receiver takes the first of its
        request's events now, or the request fails (Rejected, Unavailable).

        Only the first: a request's events are the change the client made, then what
        follows from it in the same transaction (a deleted user's groups and reports, a
        second event of one change). Asked about each in turn, a receiver could accept
        `user.deleted` and refuse the manager cleared beside it: the request fails, and
        the receiver holds an event of a deletion that was not made. The rest reach it
        afterwards, from the outbox, once the whole has committed.
        """
        pending: list[NewEvent] = []
        delivered: list[NewEvent] = []
        request = _transaction_of(transaction)
        # The client's change is the first one a request records, whoever is told of it:
        # a user's deletion that no receiver hears of still makes its groups' events
        # followers, never a question.
        may_ask = request is None or request not in self._asked
        if request is not None:
            self._asked.add(request)
        for change in changes:
            names = self._routes.get(change.kind, [])
            for content in self._describe(change) if names else []:
                body = _body(content)
                for name in names:
                    event = _event(body, content, name)
                    if may_ask and self._receivers[name].settings.synchronous:
                        await self._in_order(event, transaction)
                        await self._agree(event, change, transaction)
                        delivered.append(event)
                        if isinstance(transaction, AsyncConnection):
                            taken = _Taken(name, change, transaction.engine, surely=True)
                            self._agreed.setdefault(transaction, []).append(taken)
                    else:
                        pending.append(event)
                may_ask = False
            may_ask = False
        if not pending and not delivered:
            return
        if self._engine is not None:
            async with live_connection(self._engine) as connection, connection.begin():
                await self._append(connection, pending, delivered)
        elif isinstance(transaction, AsyncConnection):
            await self._append(transaction, pending, delivered)
        else:  # the configuration check refuses this first
            raise RuntimeError("a connector without transactions needs an [events] store")
        for name in {event.webhook for event in pending}:
            self._wake(name)

    async def _append(
        self, connection: AsyncConnection, pending: list[NewEvent], delivered: list[NewEvent]
    ) -> None:
        await self._outbox.append(connection, pending)
        await self._outbox.append(connection, delivered, delivered=True)

    async def _in_order(self, event: NewEvent, transaction: Any | None) -> None:
        """A resource's events reach a receiver in order: while an earlier one still waits
        in the outbox for this receiver (the rest of an earlier request), this one cannot
        go ahead of it, and the request is to be made again shortly (503)."""
        if not isinstance(transaction, AsyncConnection):
            return
        key = (event.webhook, event.resource_type, event.resource_id)
        if self._undoing[key] or await self._outbox.holds_pending(transaction, *key):
            self._wake(event.webhook)
            raise Unavailable(
                f"the webhook receiver {event.webhook} has earlier events of this resource "
                "to take first; retry later",
                retry_after=1,
            )

    async def _agree(self, event: NewEvent, change: Change, transaction: Any | None) -> None:
        """A synchronous receiver takes the event now, or the change is not made."""
        receiver = self._receivers[event.webhook]
        outcome = await receiver.send(event.id, event.body)
        if outcome.delivered:
            return
        if outcome.retry:
            if outcome.indeterminate and isinstance(transaction, AsyncConnection):
                # It may have taken the event: put right when the transaction ends.
                taken = _Taken(event.webhook, change, transaction.engine, surely=False)
                self._agreed.setdefault(transaction, []).append(taken)
            raise Unavailable(
                f"the webhook receiver {event.webhook} cannot take the change now "
                f"({outcome.error}); retry later",
                retry_after=client_wait(outcome.retry_after),
            )
        raise Rejected(f"the webhook receiver {event.webhook} refused the change ({outcome.error})")

    def corrects(self, kinds: Collection[Kind]) -> bool:
        """Whether a change of `kinds` may need putting right when its transaction fails:
        a synchronous receiver is asked about it. The connector then keeps a savepoint
        in such a transaction, once the row the change is about is locked, for
        `put_right_within`."""
        return any(
            self._receivers[name].settings.synchronous
            for kind in kinds
            for name in self._routes.get(kind, [])
        )

    def holds_taken(self, transaction: AsyncConnection) -> bool:
        """Whether a receiver took (or may have taken) a change of `transaction` that is
        not committed yet: a failure of it then has something to put right."""
        return bool(self._agreed.get(transaction))

    async def put_right_within(self, transaction: AsyncConnection) -> bool:
        """Store, in `transaction`, the events that put right the receivers that took (or
        may have taken) a change of it; True when there were any. The connector has rolled
        the transaction back to its savepoint (the change is undone) and commits it next,
        with only these events in it.

        Stored so, they are in the outbox before the rows the change locked are released:
        a request on the resource that waited for them (in another worker too) finds them
        and is answered 503 (`_in_order`). Stored apart after the rollback, they were not
        there yet when it looked, and its event reached the receiver before them, to be
        undone there. They stay listed until the commit (`committed`): a commit that fails
        leaves them to `abandoned`.
        """
        taken = self._agreed.get(transaction, [])
        for each in taken:
            _warn(each)
            events, due = self._undoing_events(each.name, each.change)
            await self._outbox.append(transaction, events, due=due)
        return bool(taken)

    def abandoned(self, transaction: Any) -> None:
        """The transaction this journal recorded in rolled back (a failed write after the
        events, a commit the database refused, a connection lost): a synchronous receiver
        that took its change holds a change that was not made, and is put right as one
        that may have taken it late is."""
        for each in self._agreed.pop(transaction, []):
            _warn(each)
            self._put_right(each.name, each.change, each.engine)

    def committed(self, transaction: Any) -> None:
        """The transaction committed: what its receivers took stands."""
        self._agreed.pop(transaction, None)

    def _undoing_events(self, name: str, change: Change) -> tuple[list[NewEvent], float]:
        """For receiver `name`, the events of `change` reversed, and when they are due.

        The receiver did not answer in time, or its connection was lost: it may have
        taken the event all the same, after the request failed, and would then hold a
        change that was not made (a user that does not exist, whose id SQLite gives
        the next one). A receiver that never took it is told of a state it already
        has. They are due after one more `timeout`: a receiver that was still at work
        on the event must have finished before it is told otherwise.
        """
        undone = Change(
            change.kind,
            change.id,
            before=change.after,
            after=change.before,
            members_added=change.members_removed,
            members_removed=change.members_added,
        )
        events = [_event(_body(content), content, name) for content in self._describe(undone)]
        return events, time.time() + self._receivers[name].settings.timeout

    def _put_right(self, name: str, change: Change, engine: AsyncEngine) -> None:
        """Queue for receiver `name` the events of `change` reversed (`_undoing_events`),
        when they could not be stored within the failed transaction (its commit failed).

        Stored apart, in a task that waits for the write lock the failed transaction may
        still hold on SQLite. Until they are delivered, a request on the resource is
        answered 503 (`_in_order`), and while they are being stored too (in this process:
        another worker's request can only tell once they are).
        """
        events, due = self._undoing_events(name, change)
        if not events:
            return
        key = (name, events[0].resource_type, events[0].resource_id)
        self._undoing[key] += 1
        task = asyncio.get_running_loop().create_task(self._store_later(engine, events, due))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)
        task.add_done_callback(lambda _: self._stored(key))

    def _stored(self, key: tuple[str, str, str]) -> None:
        self._undoing[key] -= 1
        if self._undoing[key] <= 0:
            del self._undoing[key]

    async def _store_later(self, engine: AsyncEngine, events: list[NewEvent], due: float) -> None:
        try:
            async with live_connection(engine) as connection, connection.begin():
                await self._outbox.append(connection, events, due=due)
        except Exception:  # a task of its own: nobody else would hear of it
            first = events[0]
            log.exception(
                "the webhook receiver %s may hold an event of a change to %s %s that was not "
                "made, and the events that put it right could not be stored",
                first.webhook,
                first.resource_type,
                first.resource_id,
            )


def _warn(taken: _Taken) -> None:
    """Log that a receiver holds, or may hold, a change that was not made."""
    log.warning(
        "the webhook receiver %s %s a change to %s %s that the database then did not make; "
        "the events that undo it are queued",
        taken.name,
        "took" if taken.surely else "may have taken",
        taken.change.kind.resource_type,
        taken.change.id,
    )


def client_wait(receiver_wait: float | None) -> int:
    """The Retry-After passed on to the client for a receiver that cannot take a change
    now: the receiver's own, within 1 to CLIENT_WAIT_MAX seconds (a receiver's date in
    2099 is not an identity provider's business), else RECEIVER_RETRY_AFTER."""
    if receiver_wait is None:
        return RECEIVER_RETRY_AFTER
    return max(1, math.ceil(min(receiver_wait, CLIENT_WAIT_MAX)))


def _event(body: dict[str, Any], content: EventContent, webhook: str) -> NewEvent:
    """The event `body` says, for one receiver."""
    return NewEvent(
        id=body["id"],
        webhook=webhook,
        type=content.type,
        resource_type=content.resource_type,
        resource_id=content.resource_id,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    )


def _transaction_of(transaction: Any | None) -> Any | None:
    """The database transaction a connection is in (one per request), or None."""
    if not isinstance(transaction, AsyncConnection) or transaction.sync_connection is None:
        return None
    return transaction.sync_connection.get_transaction()


def _body(content: EventContent) -> dict[str, Any]:
    """The JSON an event is delivered as (Standard Webhooks' type, timestamp, data)."""
    return {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": content.type,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "resourceType": content.resource_type,
            "id": content.resource_id,
            **content.data,
        },
    }
