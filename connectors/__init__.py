"""Backends behind one async interface (connectors.base.Connector)."""

from __future__ import annotations

from connectors.base import BackendSchema, Connector
from connectors.sql import SqlConnector, SqlSettings

ConnectorSettings = SqlSettings
"""The settings of any connector; a union discriminated by `type` once LDAP and webhook
connectors exist."""


def build_connector(settings: ConnectorSettings, schema: BackendSchema) -> Connector:
    """The connector that `settings` describe, for the backend `schema` maps onto."""
    return SqlConnector(settings, schema)
