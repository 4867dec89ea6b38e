"""An in-process scim-bridge on a fresh backend, for HTTP-level tests.

The `scim` fixture runs every test of the behaviour suite on SQLite, PostgreSQL, MariaDB and
OpenLDAP in turn, each with its shipped preset (`sql-default`, `ldap-openldap`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from backends import BACKENDS, create_database, create_default_tables, drop_database
from direct import Direct, LdapDirect, SqlDirect
from scim_client import BASE, LDAP_PASSWORD_ENV, TOKEN, Scim, write_config, write_ldap_config
from slapd import SlapdServer

from bridge.app import build_app
from bridge.auth import TokenVerifier
from bridge.config import load_config
from connectors import build_connector
from mappings import load_mapping

BRIDGE_BACKENDS = (*BACKENDS, "ldap")


@pytest.fixture(params=BRIDGE_BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Direct]:
    """A fresh backend holding what its preset needs, and direct access to it."""
    name: str = request.param
    if name == "ldap":
        slapd = request.getfixturevalue("slapd")
        yield LdapDirect(slapd, slapd.make_tree(f"bridge-{tmp_path.name}"))
        return
    url = await create_database(name, tmp_path)
    await create_default_tables(url)
    direct = SqlDirect(name, url)
    yield direct
    await direct.close()
    await drop_database(name, url)


@pytest.fixture
async def scim(
    backend: Direct, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Scim:
    return await serve(backend, tmp_path, aiohttp_client, monkeypatch)


@pytest.fixture
async def ldap_scim(
    slapd: SlapdServer, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Scim:
    """The bridge on OpenLDAP alone, for what only a directory does."""
    direct = LdapDirect(slapd, slapd.make_tree(f"bridge-{tmp_path.name}"))
    return await serve(direct, tmp_path, aiohttp_client, monkeypatch)


async def serve(
    backend: Direct, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Scim:
    """The bridge in process, on `backend` with its shipped preset."""
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", TOKEN)
    if isinstance(backend, LdapDirect):
        monkeypatch.setenv(LDAP_PASSWORD_ENV, backend.slapd.admin_password)
        config = write_ldap_config(tmp_path, backend.slapd, backend.tree)
    else:
        config = write_config(tmp_path, backend.url)
    settings = load_config(config)
    mapping = load_mapping(settings.mapping_source())
    verifier = TokenVerifier.from_settings(
        settings.auth, {"SCIM_BRIDGE_TEST_TOKEN": TOKEN}, str(settings.source)
    )
    connector = build_connector(settings.connector, mapping.backend)
    client = await aiohttp_client(build_app(settings, mapping, connector, verifier))
    return Scim(client, str(client.make_url(BASE)), backend)
