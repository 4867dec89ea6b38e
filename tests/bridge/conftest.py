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
from config_files import Write, config_writer
from direct import Direct, LdapDirect, SqlDirect
from hr_table import create_hr_staff
from receiver import Receiver
from scim_client import Scim
from served import serve
from slapd import SlapdServer

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
    ldap_direct: LdapDirect, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Scim:
    """The bridge on OpenLDAP alone, for what only a directory does."""
    return await serve(ldap_direct, tmp_path, aiohttp_client, monkeypatch)


@pytest.fixture
def ldap_direct(slapd: SlapdServer, tmp_path: Path) -> LdapDirect:
    """A fresh tree of the test slapd, for what only a directory does."""
    return LdapDirect(slapd, slapd.make_tree(f"bridge-{tmp_path.name}"))


@pytest.fixture
async def sqlite_direct(tmp_path: Path) -> AsyncIterator[SqlDirect]:
    """A fresh SQLite database with the default tables, for what is the same everywhere."""
    url = await create_database("sqlite", tmp_path)
    await create_default_tables(url)
    direct = SqlDirect("sqlite", url)
    yield direct
    await direct.close()


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Write:
    """config.toml in a fresh working directory (messages name `config.toml`), with a
    usable token and webhook secret in the environment."""
    return config_writer(tmp_path, monkeypatch)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver: a real aiohttp server on 127.0.0.1 that records what it gets."""
    started = Receiver()
    await started.start()
    yield started
    await started.stop()


@pytest.fixture(params=["postgresql", "mariadb"])
async def hr_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database holding the sql-hr-table preset's `hr_staff` (hr_table.py)."""
    backend: str = request.param
    url = await create_database(backend, tmp_path)
    await create_hr_staff(url, backend)
    yield url
    await drop_database(backend, url)
