"""Events for systems that take HTTP calls: a transactional outbox, signed deliveries
(Standard Webhooks), and a connector that keeps SCIM state in scim-bridge's own store."""

from connectors.webhook.delivery import DeliveryWorker, Receiver
from connectors.webhook.journal import EventContent, OutboxJournal
from connectors.webhook.outbox import Outbox, Status, StoredEvent
from connectors.webhook.settings import (
    EventStoreSettings,
    WebhookConnectorSettings,
    WebhookSettings,
)

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
