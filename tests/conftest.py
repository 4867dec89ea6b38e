"""Fixtures shared by every test package: a fresh database on each SQL backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from backends import BACKENDS, create_database, drop_database
from required import unavailable
from slapd import SlapdServer, slapd_available, start_slapd


@pytest.fixture(params=BACKENDS)
async def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The async URL of a fresh, empty database, on sqlite, postgresql and mariadb in turn.

    Create the default tables in it with `backends.create_default_tables(sql_url)`.
    """
    backend: str = request.param
    url = await create_database(backend, tmp_path)
    yield url
    await drop_database(backend, url)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    """One OpenLDAP server for the session; its trees keep the tests apart."""
    unavailable(slapd_available())
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()
