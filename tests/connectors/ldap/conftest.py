"""An LDAP connector on its own tree of the session's slapd, for each test."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from slapd import SlapdServer

from connectors.base import BackendSchema
from connectors.ldap import LdapConnector, LdapSettings
from mappings import Mapping, load_mapping

PASSWORD_ENV = "SCIM_BRIDGE_TEST_LDAP_PASSWORD"
_trees = itertools.count(1)


@pytest.fixture
def ldap_tree(slapd: SlapdServer) -> str:
    """A fresh `ou=tN,dc=example,dc=org` with people, groups and disabled beneath it."""
    return slapd.make_tree(f"t{next(_trees)}")


@pytest.fixture
def ldap_settings(
    slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., LdapSettings]:
    monkeypatch.setenv(PASSWORD_ENV, slapd.admin_password)

    def settings(**overrides: Any) -> LdapSettings:
        values: dict[str, Any] = {
            "type": "ldap",
            "urls": [slapd.url],
            "base_dn": ldap_tree,
            "bind_dn": slapd.admin_dn,
            "password_env": PASSWORD_ENV,
            "pool_size": 4,
            **overrides,
        }
        return LdapSettings.model_validate(values)

    return settings


@pytest.fixture
def openldap() -> Mapping:
    return load_mapping("ldap-openldap")


@pytest.fixture
async def ldap(
    ldap_settings: Callable[..., LdapSettings], openldap: Mapping
) -> AsyncIterator[LdapConnector]:
    """The connector for the OpenLDAP preset, opened."""
    connector = LdapConnector(ldap_settings(), openldap.backend)
    await connector.open()
    yield connector
    await connector.close()


@pytest.fixture
async def connect(
    ldap_settings: Callable[..., LdapSettings],
) -> AsyncIterator[Callable[..., Any]]:
    """Open a connector for another schema or settings; closed at the end of the test."""
    opened: list[LdapConnector] = []

    async def opener(schema: BackendSchema, **overrides: Any) -> LdapConnector:
        connector = LdapConnector(ldap_settings(**overrides), schema)
        await connector.open()
        opened.append(connector)
        return connector

    yield opener
    for connector in opened:
        await connector.close()
