"""scim2-tester's whole check suite against `scim-bridge serve`: SQLite, PostgreSQL, OpenLDAP,
and the webhook connector.

The server runs as a real process started through the command line, as an admin runs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from backends import create_default_tables
from ports import free_port
from readme import readme_block
from receiver import SECRET
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server
from scim_client import TOKEN, write_config
from served import spawn_serve
from slapd import SlapdServer


@pytest.fixture
def served(sql_url: str, tmp_path: Path) -> Iterator[str]:
    import asyncio

    if not sql_url.startswith("sqlite"):
        asyncio.run(create_default_tables(sql_url))
        config = write_config(tmp_path, sql_url)
    else:
        config = write_config(
            tmp_path, f"sqlite+aiosqlite:///{tmp_path}/embedded.db", extra="create_tables = true"
        )
    yield from _serve(config, tmp_path, {})


@pytest.fixture
def served_by_workers(sql_url: str, tmp_path: Path) -> Iterator[str]:
    """Three workers on one port."""
    import asyncio

    asyncio.run(create_default_tables(sql_url))
    config = write_config(tmp_path, sql_url)
    config.write_text(
        config.read_text().replace("max_page_size = 50\n", "max_page_size = 50\nworkers = 3\n")
    )
    yield from _serve(config, tmp_path, {})


@pytest.fixture
def served_ldap(slapd: SlapdServer, tmp_path: Path) -> Iterator[str]:
    """The README's OpenLDAP configuration, pointed at a tree of the test server."""
    tree = slapd.make_tree("conformance")
    config = readme_block("ldap-config")
    for key, value in (
        ("urls", f'["{slapd.url}"]'),
        ("base_dn", f'"{tree}"'),
        ("bind_dn", f'"{slapd.admin_dn}"'),
    ):
        config, replaced = re.subn(rf"^{key} = .*$", f"{key} = {value}", config, flags=re.M)
        assert replaced == 1, key
    config = config.replace('env = "SCIM_BRIDGE_TOKEN"', 'env = "SCIM_BRIDGE_TEST_TOKEN"')
    path = tmp_path / "config.toml"
    path.write_text(config)
    yield from _serve(path, tmp_path, {"LDAP_BIND_PASSWORD": slapd.admin_password})


@pytest.fixture
def served_webhook(tmp_path: Path) -> Iterator[str]:
    """The webhook connector on its own SQLite store; the receiver is down meanwhile."""
    path = tmp_path / "config.toml"
    path.write_text(
        'mapping = "sql-default"\n[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
        f'[connector]\ntype = "webhook"\nurl = "sqlite+aiosqlite:///{tmp_path}/store.db"\n'
        'webhooks = ["hr"]\n'
        f'[webhooks.hr]\nurl = "http://127.0.0.1:{free_port()}/"\nsecret_env = "HR_SECRET"\n'
    )
    yield from _serve(path, tmp_path, {"HR_SECRET": SECRET})


def _serve(config: Path, tmp_path: Path, environ: dict[str, str]) -> Iterator[str]:
    process, url = spawn_serve(config, tmp_path / "serve.log", environ)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("sql_url", ["sqlite", "postgresql"], indirect=True)
def test_scim2_tester_reports_only_success(served: str) -> None:
    assert_only_success(served)


@pytest.mark.parametrize("sql_url", ["postgresql"], indirect=True)
def test_scim2_tester_reports_only_success_with_three_workers(served_by_workers: str) -> None:
    assert_only_success(served_by_workers, keep_alive=False)


def test_scim2_tester_reports_only_success_on_openldap(served_ldap: str) -> None:
    assert_only_success(served_ldap)


def test_scim2_tester_reports_only_success_on_the_webhook_connector(served_webhook: str) -> None:
    assert_only_success(served_webhook)


def assert_only_success(served: str, *, keep_alive: bool = True) -> None:
    """Every check succeeds; without `keep_alive`, each request opens a connection of its
    own, so that the kernel spreads them over the workers."""
    limits = httpx2.Limits() if keep_alive else httpx2.Limits(max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx2.Client(base_url=served, headers=headers, limits=limits) as http:
        client = SyncSCIMClient(http)
        results = check_server(client)
    failures = [
        f"{r.status.name} {r.title}: {r.reason}" for r in results if r.status != Status.SUCCESS
    ]
    assert results
    assert failures == [], "\n".join(failures)
