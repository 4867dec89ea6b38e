"""The bridge in process on a backend, as the HTTP-level tests use it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from direct import Direct, LdapDirect
from ports import free_port
from scim_client import BASE, LDAP_PASSWORD_ENV, TOKEN, Scim, write_config, write_ldap_config

from bridge.cli import application


async def serve(
    backend: Direct,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    *,
    extra: str = "",
    mapping: str | None = None,
    environ: dict[str, str] | None = None,
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
    return await serve_config(config, aiohttp_client, backend, environ)


async def serve_config(
    config: Path, aiohttp_client: Any, backend: Any, environ: dict[str, str] | None = None
) -> Scim:
    """The bridge in process, as `scim-bridge serve` builds it from a configuration file."""
    app, _ = await application(config, {"SCIM_BRIDGE_TEST_TOKEN": TOKEN, **(environ or {})})
    client = await aiohttp_client(app)
    return Scim(client, str(client.make_url(BASE)), backend)


def spawn_serve(config: Path, log: Path, environ: dict[str, str]) -> tuple[Any, str]:
    """`scim-bridge serve` as a separate process, as an admin runs it; (process, base URL)."""
    port = free_port()
    env = {**os.environ, "SCIM_BRIDGE_TEST_TOKEN": TOKEN, **environ}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "serve", "--config", str(config), "--listen",
             f"127.0.0.1:{port}"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"serve did not start:\n{log.read_text()}") from None
            time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}{BASE}"
