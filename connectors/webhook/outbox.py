"""The transactional outbox: events as rows, written with the change, delivered afterwards.

A row is one event for one receiver. Its `sequence` orders the events of a resource;
only the oldest pending event of a resource is ever due (head of line), so a resource's
events reach each receiver in order, while other resources go on. Rows are claimed with
FOR UPDATE SKIP LOCKED where the database has it (PostgreSQL, MariaDB): several
scim-bridge processes share the work and never deliver the same event at once, and a
process killed mid-delivery releases its rows with its connection.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.webhook.status import Status

TABLE = "scim_bridge_events"


def events_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        TABLE,
        metadata,
        sa.Column(
            "sequence",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("webhook", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        # Unix times as doubles: MariaDB's FLOAT is single precision, 64 s apart today.
        sa.Column("created", sa.Double, nullable=False),
        sa.Column("due", sa.Double, nullable=False),
        sa.Column("finished", sa.Double, nullable=True),
        sa.Column("last_error", sa.String(255), nullable=True),
        sa.UniqueConstraint("webhook", "id", name=f"{TABLE}_id"),
        sa.Index(f"{TABLE}_due", "webhook", "status", "due"),
        sa.Index(f"{TABLE}_resource", "webhook", "resource_type", "resource_id", "status"),
    )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to store: the body is delivered exactly as it is here."""

    id: str
    webhook: str
    type: str
    resource_type: str
    resource_id: str
    body: str


@dataclass(frozen=True, slots=True)
class StoredEvent:
    sequence: int
    id: str
    webhook: str
    type: str
    resource_type: str
    resource_id: str
    body: str
    status: Status
    attempts: int
    created: float
    due: float
    finished: float | None
    last_error: str | None


class Outbox:
    """The events table of one database, and what can be done with its rows."""

    def __init__(self) -> None:
        self.metadata = sa.MetaData()
        self.table = events_table(self.metadata)

    async def create(self, connection: AsyncConnection) -> None:
        """Create the table when missing (it is scim-bridge's own, in whichever database)."""
        await connection.run_sync(self.metadata.create_all, checkfirst=True)

    async def holds_pending(
        self, connection: AsyncConnection, webhook: str, resource_type: str, resource_id: str
    ) -> bool:
        """Whether an event of this resource still waits for `webhook`."""
        condition = _pending_of(self.table, webhook, resource_type, resource_id)
        found = await connection.execute(sa.select(sa.literal(1)).where(*condition).limit(1))
        return found.first() is not None

    async def append(
        self,
        connection: AsyncConnection,
        events: Iterable[NewEvent],
        *,
        delivered: bool = False,
        due: float | None = None,
    ) -> None:
        """Insert events, pending (or already delivered, by a synchronous receiver); due
        now, or at the Unix time `due`."""
        now = time.time()
        rows = [
            {
                "id": event.id,
                "webhook": event.webhook,
                "type": event.type,
                "resource_type": event.resource_type,
                "resource_id": event.resource_id,
                "body": event.body,
                "status": Status.DELIVERED if delivered else Status.PENDING,
                "attempts": 1 if delivered else 0,
                "created": now,
                "due": now if due is None else due,
                "finished": now if delivered else None,
            }
            for event in events
        ]
        if rows:
            await connection.execute(sa.insert(self.table), rows)

    async def claim(
        self,
        connection: AsyncConnection,
        webhook: str,
        limit: int,
        *,
        lock: bool,
        excluding: Collection[int] = (),
    ) -> list[StoredEvent]:
        """The due events at the head of their resource's line, oldest first, but
        those in `excluding` (sequences already under way; their lines wait for them).

        With `lock`, the rows stay locked (FOR UPDATE SKIP LOCKED) until the
        transaction of `connection` ends: no other process can claim them meanwhile.
        """
        statement = self._due(webhook).order_by(self.table.c.sequence).limit(limit)
        if excluding:
            statement = statement.where(self.table.c.sequence.notin_(list(excluding)))
        if lock:
            statement = statement.with_for_update(skip_locked=True)
        rows = (await connection.execute(statement)).mappings().all()
        return [_stored(row) for row in rows]

    async def claim_one(
        self, connection: AsyncConnection, webhook: str, sequence: int
    ) -> StoredEvent | None:
        """The event `sequence` of `webhook`, locked (FOR UPDATE SKIP LOCKED) until the
        transaction of `connection` ends, if it is still due at the head of its line and
        no other process holds it; else None."""
        statement = (
            self._due(webhook)
            .where(self.table.c.sequence == sequence)
            .with_for_update(skip_locked=True)
        )
        found = (await connection.execute(statement)).mappings().first()
        return _stored(found) if found is not None else None

    def _due(self, webhook: str) -> sa.Select[Any]:
        """The pending, due events of `webhook` that no older pending event of the same
        resource precedes (a resource's events go one at a time, in order)."""
        events = self.table
        older = events.alias("older")
        ahead = (
            sa.select(sa.literal(1))
            .where(
                *_pending_of(older, events.c.webhook, events.c.resource_type, events.c.resource_id),
                older.c.sequence < events.c.sequence,
            )
            .exists()
        )
        return sa.select(events).where(
            events.c.webhook == webhook,
            events.c.status == Status.PENDING,
            events.c.due <= time.time(),
            ~ahead,
        )

    async def finish(
        self,
        connection: AsyncConnection,
        sequence: int,
        status: Status,
        *,
        attempts: int,
        due: float | None = None,
        error: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "attempts": attempts, "last_error": error}
        if status is Status.PENDING:
            values["due"] = due
        else:
            values["finished"] = time.time()
        await connection.execute(
            sa.update(self.table).where(self.table.c.sequence == sequence).values(values)
        )

    async def listed(
        self, connection: AsyncConnection, status: Status | None, limit: int
    ) -> list[StoredEvent]:
        statement = sa.select(self.table).order_by(self.table.c.sequence.desc()).limit(limit)
        if status is not None:
            statement = statement.where(self.table.c.status == status)
        rows = (await connection.execute(statement)).mappings().all()
        return [_stored(row) for row in rows]

    async def counts(self, connection: AsyncConnection) -> dict[Status, int]:
        statement = sa.select(self.table.c.status, sa.func.count()).group_by(self.table.c.status)
        found = {Status(status): count for status, count in await connection.execute(statement)}
        return {status: found.get(status, 0) for status in Status}

    async def retry(
        self, connection: AsyncConnection, *, ids: Iterable[str] = (), all_failed: bool = False
    ) -> list[str]:
        """Make failed events pending again, due now, with a fresh count of attempts; the
        ids of those it did (an id of no failed event is not among them).

        Their age counts from now too: a dead letter retried by hand gets the whole
        `max_age` again.
        """
        now = time.time()
        where = self.table.c.status == Status.FAILED
        if not all_failed:
            where = sa.and_(where, self.table.c.id.in_(list(ids)))
        found = await connection.execute(
            sa.select(self.table.c.sequence, self.table.c.id).where(where).with_for_update()
        )
        rows = found.all()
        if rows:
            # The same condition, not a list of the rows: tens of thousands of dead letters
            # would exceed a driver's bound parameters (asyncpg: 32,767). The rows read are
            # locked: these are the rows it updates.
            await connection.execute(
                sa.update(self.table)
                .where(where)
                .values(
                    status=Status.PENDING,
                    due=now,
                    created=now,
                    attempts=0,
                    finished=None,
                    last_error=None,
                )
            )
        return [row.id for row in rows]


def _stored(row: sa.RowMapping) -> StoredEvent:
    return StoredEvent(
        sequence=row["sequence"],
        id=row["id"],
        webhook=row["webhook"],
        type=row["type"],
        resource_type=row["resource_type"],
        resource_id=row["resource_id"],
        body=row["body"],
        status=Status(row["status"]),
        attempts=row["attempts"],
        created=row["created"],
        due=row["due"],
        finished=row["finished"],
        last_error=row["last_error"],
    )


def _pending_of(
    events: sa.FromClause, webhook: Any, resource_type: Any, resource_id: Any
) -> list[sa.ColumnElement[bool]]:
    """The rows of `events` still pending for this webhook and resource (each given as
    a value, or as a column of the row that asks)."""
    return [
        events.c.webhook == webhook,
        events.c.resource_type == resource_type,
        events.c.resource_id == resource_id,
        events.c.status == Status.PENDING,
    ]
