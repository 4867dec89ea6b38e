"""The journal that turns every write into events in the outbox (connectors.base.Journal).

What an event says is decided by the bridge (`describe`: the SCIM resource after the
change, the attributes that changed); this module only routes events to receivers,
stores them, and has a synchronous receiver take the first event of each request at once.
"""

from __future__ import annotations

import json
import uuid
import weakref
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

STORE_RETRY_AFTER = 5
"""Seconds a client is asked to wait when the events store does not answer."""


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
        """The transactions in which a synchronous receiver was asked already."""

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
        may_ask = request is None or request not in self._asked
        for change in changes:
            names = self._routes.get(change.kind, [])
            if not names:
                continue
            for content in self._describe(change):
                body = _body(content)
                for name in names:
                    event = NewEvent(
                        id=body["id"],
                        webhook=name,
                        type=content.type,
                        resource_type=content.resource_type,
                        resource_id=content.resource_id,
                        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                    )
                    if may_ask and self._receivers[name].settings.synchronous:
                        await self._in_order(event, transaction)
                        await self._agree(event)
                        delivered.append(event)
                    else:
                        pending.append(event)
                if delivered:
                    may_ask = False
                    if request is not None:
                        self._asked.add(request)
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
        if await self._outbox.holds_pending(
            transaction, event.webhook, event.resource_type, event.resource_id
        ):
            self._wake(event.webhook)
            raise Unavailable(
                f"the webhook receiver {event.webhook} has earlier events of this resource "
                "to take first; retry later",
                retry_after=1,
            )

    async def _agree(self, event: NewEvent) -> None:
        """A synchronous receiver takes the event now, or the change is not made."""
        receiver = self._receivers[event.webhook]
        outcome = await receiver.send(event.id, event.body)
        if outcome.delivered:
            return
        if outcome.retry:
            raise Unavailable(
                f"the webhook receiver {event.webhook} cannot take the change now "
                f"({outcome.error}); retry later",
                retry_after=int(outcome.retry_after or 5),
            )
        raise Rejected(f"the webhook receiver {event.webhook} refused the change ({outcome.error})")


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
