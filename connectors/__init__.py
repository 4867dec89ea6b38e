"""Backends behind one async interface (connectors.base.Connector)."""

from __future__ import annotations

from typing import Annotated

import pydantic

from connectors.base import BackendSchema, Connector, Journal
from connectors.forget_board import ForgetBoard
from connectors.ldap import LdapConnector, LdapSettings
from connectors.sql import SqlSettings
from connectors.webhook import WebhookConnectorSettings

AnyConnectorSettings = SqlSettings | LdapSettings | WebhookConnectorSettings
ConnectorSettings = Annotated[AnyConnectorSettings, pydantic.Field(discriminator="type")]
"""The settings of any connector, told apart by their `type`."""


def build_connector(
    settings: AnyConnectorSettings,
    schema: BackendSchema,
    journal: Journal | None = None,
    *,
    rehearsal: bool = False,
    forgets: ForgetBoard | None = None,
) -> Connector:
    """The connector that `settings` describe, for the backend `schema` maps onto.

    A "webhook" connector is the SQL connector on scim-bridge's own store, whose journal
    turns every change into events. With `rehearsal` (`scim-bridge check`), opening it
    writes nothing: what create_tables would create is created and rolled back. A
    directory is never written to by opening. `forgets` is the board on which the
    service's workers tell each other what their writes made stale in their caches
    (connectors.forget_board): only a directory's connector keeps such caches.
    """
    if isinstance(settings, LdapSettings):
        return LdapConnector(settings, schema, journal, forgets)
    from connectors.sql import SqlConnector  # SQLAlchemy only when a database is used

    return SqlConnector(settings, schema, journal, rehearsal=rehearsal)
