"""Events for systems that take HTTP calls: a transactional outbox, signed deliveries
(Standard Webhooks), and a connector that keeps SCIM state in scim-bridge's own store."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from connectors.webhook.settings import (
    EventStoreSettings,
    WebhookConnectorSettings,
    WebhookSettings,
)
from connectors.webhook.status import Status

if TYPE_CHECKING:
    from connectors.webhook.delivery import DeliveryWorker, Receiver
    from connectors.webhook.journal import EventContent, OutboxJournal
    from connectors.webhook.outbox import Outbox, StoredEvent

__all__ = [
    "DeliveryWorker",
    "EventContent",
    "EventStoreSettings",
    "Outbox",
    "OutboxJournal",
    "Receiver",
    "Status",
    "StoredEvent",
    "WebhookConnectorSettings",
    "WebhookSettings",
]

_ON_FIRST_USE = {
    "DeliveryWorker": "connectors.webhook.delivery",
    "Receiver": "connectors.webhook.delivery",
    "EventContent": "connectors.webhook.journal",
    "OutboxJournal": "connectors.webhook.journal",
    "Outbox": "connectors.webhook.outbox",
    "StoredEvent": "connectors.webhook.outbox",
}


def __getattr__(name: str) -> Any:
    """The outbox and its deliveries are imported when first asked for (PEP 562): they
    load SQLAlchemy, which a service without events never needs; the settings are light."""
    if name in _ON_FIRST_USE:
        return getattr(importlib.import_module(_ON_FIRST_USE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
