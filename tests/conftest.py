"""Fixtures shared by every test package: a fresh database on each SQL backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from backends import BACKENDS, create_database, drop_database


@pytest.fixture(params=BACKENDS)
async def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The async URL of a fresh, empty database, on sqlite, postgresql and mariadb in turn.

    Create the default tables in it with `backends.create_default_tables(sql_url)`.
    """
    backend: str = request.param
    url = await create_database(backend, tmp_path)
    yield url
    await drop_database(backend, url)
