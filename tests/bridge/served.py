"""The bridge in process on a backend, as the HTTP-level tests use it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from direct import Direct, LdapDirect
from scim_client import BASE, LDAP_PASSWORD_ENV, TOKEN, Scim, write_config, write_ldap_config

from bridge.app import build_app
from bridge.auth import TokenVerifier
from bridge.config import load_config
from connectors import build_connector
from mappings import load_mapping


async def serve(
    backend: Direct,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    *,
    extra: str = "",
    mapping: str | None = None,
) -> Scim:
    """The bridge in process, on `backend` with its shipped preset (or `mapping`).

    `extra` is TOML appended to the configuration file (`[users]` policies, say).
    """
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", TOKEN)
    if isinstance(backend, LdapDirect):
        monkeypatch.setenv(LDAP_PASSWORD_ENV, backend.slapd.admin_password)
        config = write_ldap_config(
            tmp_path, backend.slapd, backend.tree, mapping=mapping or "ldap-openldap", extra=extra
        )
    else:
        config = write_config(tmp_path, backend.url, mapping=mapping or "sql-default", extra=extra)
    return await serve_config(config, aiohttp_client, backend)


async def serve_config(config: Path, aiohttp_client: Any, backend: Any) -> Scim:
    """The bridge in process, as a configuration file describes it."""
    settings = load_config(config)
    mapping = load_mapping(settings.mapping_source())
    verifier = TokenVerifier.from_settings(
        settings.auth, {"SCIM_BRIDGE_TEST_TOKEN": TOKEN}, str(settings.source)
    )
    connector = build_connector(settings.connector, mapping.backend)
    client = await aiohttp_client(build_app(settings, mapping, connector, verifier))
    return Scim(client, str(client.make_url(BASE)), backend)
