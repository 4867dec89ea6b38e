"""Backends behind one async interface (connectors.base.Connector)."""

from __future__ import annotations

from typing import Annotated

import pydantic

from connectors.base import BackendSchema, Connector
from connectors.ldap import LdapConnector, LdapSettings
from connectors.sql import SqlConnector, SqlSettings

ConnectorSettings = Annotated[SqlSettings | LdapSettings, pydantic.Field(discriminator="type")]
"""The settings of any connector, told apart by their `type`."""


def build_connector(settings: SqlSettings | LdapSettings, schema: BackendSchema) -> Connector:
    """The connector that `settings` describe, for the backend `schema` maps onto."""
    if isinstance(settings, LdapSettings):
        return LdapConnector(settings, schema)
    return SqlConnector(settings, schema)
