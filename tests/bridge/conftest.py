"""An in-process scim-bridge on a fresh database of each SQL backend, for HTTP-level tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from backends import create_default_tables
from scim_client import BASE, TOKEN, Scim, write_config

from bridge.app import build_app
from bridge.auth import TokenVerifier
from bridge.config import load_config
from connectors import build_connector
from mappings import load_mapping


@pytest.fixture
async def scim(
    sql_url: str, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Scim]:
    await create_default_tables(sql_url)
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", TOKEN)
    settings = load_config(write_config(tmp_path, sql_url))
    mapping = load_mapping(settings.mapping_source())
    verifier = TokenVerifier.from_settings(
        settings.auth, {"SCIM_BRIDGE_TEST_TOKEN": TOKEN}, str(settings.source)
    )
    connector = build_connector(settings.connector, mapping.backend)
    client = await aiohttp_client(build_app(settings, mapping, connector, verifier))
    return Scim(client, str(client.make_url(BASE)))
