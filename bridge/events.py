"""Every change as events for the webhook receivers: what they say, and their machinery.

The connector's journal (connectors.webhook) stores and delivers; this module decides
what an event says, in SCIM terms: the resource after the change as a client reads it,
the attributes that changed with their old and new values, the members that joined or
left. Event types: user.created, user.updated, user.deactivated, user.reactivated,
user.deleted, group.created, group.updated, group.deleted, group.members_added,
group.members_removed.
"""

from __future__ import annotations

from collections.abc import Mapping as ReadOnly
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bridge.config import Settings
from bridge.render import RESOURCE_TYPE_NAMES, Renderer
from connectors.base import Change, Kind, Record
from connectors.sql.settings import SqlSettings, parse_url
from mappings import Mapping

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from connectors.webhook import DeliveryWorker, EventContent

# The outbox, its deliveries and the store's engine are imported where they are first
# used: they load SQLAlchemy, which a service without events (on a directory) never needs.

_NOT_COMPARED = {"id", "schemas", "meta", "members", "groups"}
_NOUNS = {Kind.USERS: "user", Kind.GROUPS: "group"}


class EventDescriber:
    """What the events of a change say (connectors.webhook.journal's `describe`)."""

    def __init__(self, mapping: Mapping, base_url: str) -> None:
        self._renderers = {Kind.USERS: Renderer(Kind.USERS, mapping.users, base_url)}
        if mapping.groups is not None:
            self._renderers[Kind.GROUPS] = Renderer(Kind.GROUPS, mapping.groups, base_url)

    def __call__(self, change: Change) -> list[EventContent]:
        from connectors.webhook import EventContent

        noun = _NOUNS[change.kind]
        resource_type = RESOURCE_TYPE_NAMES[change.kind]

        def event(kind: str, resource: dict[str, Any], **data: Any) -> EventContent:
            return EventContent(
                f"{noun}.{kind}", resource_type, change.id, {"resource": resource, **data}
            )

        if change.before is None and change.after is not None:
            created = self._render(change.kind, change.after, with_members=True)
            return [event("created", created)]
        if change.after is None and change.before is not None:
            return [event("deleted", self._render(change.kind, change.before))]
        if change.before is None or change.after is None:
            return []
        after = self._render(change.kind, change.after)
        changed = differences(self._render(change.kind, change.before), after)
        events: list[EventContent] = []
        active = changed.get("active")
        if active is not None and isinstance(active["new"], bool):
            del changed["active"]  # its own event says it
        else:
            active = None  # `active` removed (or never a boolean): an update like any other
        if changed:
            events.append(event("updated", after, changes=changed))
        if active is not None and active["new"] is False:
            events.append(event("deactivated", after))
        elif active is not None and active["new"] is True:
            events.append(event("reactivated", after))
        for kind, ids in (
            ("members_added", change.members_added),
            ("members_removed", change.members_removed),
        ):
            if ids:
                events.append(event(kind, after, members=sorted(ids)))
        return events

    def _render(self, kind: Kind, record: Record, *, with_members: bool = False) -> dict[str, Any]:
        """The resource as a client reads it. A group shows its members when it is
        created; afterwards they may be tens of thousands, and the members_added and
        members_removed events say what changed."""
        if not with_members:
            record = replace(record, members=None)
        return self._renderers[kind].render(record)


def differences(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Attribute -> {"old", "new"} for every attribute whose value differs.

    An extension's attributes are named with their URN (`urn:...:User:department`), as a
    filter or a PATCH path names them (RFC 7644 §3.10).
    """

    def flat(resource: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, value in resource.items():
            if name in _NOT_COMPARED:
                continue
            if name.lower().startswith("urn:") and isinstance(value, dict):
                found.update({f"{name}:{sub}": each for sub, each in value.items()})
            else:
                found[name] = value
        return found

    old, new = flat(before), flat(after)
    return {
        name: {"old": old.get(name), "new": new.get(name)}
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    }


def events_base_url(settings: Settings) -> str:
    """The base of `$ref` and `meta.location` in events: no request to take a host from."""
    server = settings.server
    return (server.public_url or "") + server.base_path.rstrip("/")


def store_engine(url: str, settings: Settings) -> AsyncEngine:
    """An engine on the events' database, with the connector's pool settings if it has any.

    Every transaction on it is a writer's: on SQLite one begins IMMEDIATE, waiting for
    the write lock up front, where a transaction that read first would fail at its first
    write if another process (`events retry`, a second worker) wrote meanwhile.
    """
    from connectors.sql.engine import WRITE_OPTION, make_engine

    connector = settings.connector
    # On PostgreSQL and MariaDB each delivery under way holds a connection (its event's
    # lock): room for every receiver's lanes, and for the writes beside them.
    lanes = sum(webhook.concurrency for webhook in settings.webhooks.values())
    engine = make_engine(
        SqlSettings.model_construct(
            type="sql",
            url=url,
            create_tables=False,
            pool_size=max(getattr(connector, "pool_size", 5), lanes + 2),
            connect_timeout=getattr(connector, "connect_timeout", 10.0),
        )
    )
    return engine.execution_options(**{WRITE_OPTION: True})


class Events:
    """The outbox of a configuration, its receivers, their workers and the journal.

    Built before the connector (which takes the journal), opened and closed with the
    application. ValueError names a receiver whose secret cannot be used.
    """

    def __init__(
        self, settings: Settings, mapping: Mapping, store: str, environ: ReadOnly[str, str]
    ) -> None:
        from connectors.webhook import Outbox, OutboxJournal, Receiver

        routes = settings.destinations()
        used = sorted({name for names in routes.values() for name in names})
        self.settings = settings
        self.store = store
        self.outbox = Outbox()
        self.receivers = {
            name: Receiver(name, settings.webhooks[name], settings.webhooks[name].key(environ))
            for name in used
        }
        self.engine = store_engine(store, settings)
        self.workers: dict[str, DeliveryWorker] = {}
        # In the connector's own database, events are written in the write's transaction.
        own_database = settings.events.store is not None
        self.journal = OutboxJournal(
            self.outbox,
            EventDescriber(mapping, events_base_url(settings)),
            {Kind.USERS: routes["users"], Kind.GROUPS: routes["groups"]},
            self.receivers,
            engine=self.engine if own_database else None,
            wake=self.wake,
        )

    @classmethod
    def configured(
        cls, settings: Settings, mapping: Mapping, environ: ReadOnly[str, str]
    ) -> Events | None:
        """The events of a configuration, None when no receiver is named."""
        store = settings.event_store()
        if store is None or not any(settings.destinations().values()):
            return None
        return cls(settings, mapping, store, environ)

    def wake(self, name: str) -> None:
        worker = self.workers.get(name)
        if worker is not None:
            worker.wake()

    async def open(self) -> None:
        """Create the events table when missing, and start delivering."""
        from connectors.webhook import DeliveryWorker

        async with self.engine.begin() as connection:
            await self.outbox.create(connection)
        lock = parse_url(self.store).get_backend_name() != "sqlite"
        # A synchronous receiver too: it takes the first event of a request at once, and
        # the rest of that request's events from here (see OutboxJournal.record).
        for name, receiver in self.receivers.items():
            worker = DeliveryWorker(
                self.engine,
                self.outbox,
                receiver,
                lock=lock,
                poll_interval=self.settings.events.poll_interval,
            )
            self.workers[name] = worker
            worker.start()

    async def close(self) -> None:
        for worker in self.workers.values():
            await worker.stop()
        self.workers.clear()
        for receiver in self.receivers.values():
            await receiver.close()
        await self.engine.dispose()
