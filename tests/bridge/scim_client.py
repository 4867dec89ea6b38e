"""A small SCIM client for HTTP-level tests of the bridge, and the config they run under."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from direct import Direct
from slapd import SlapdServer

TOKEN = "test-token-0123456789"
BASE = "/scim/v2"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any


@dataclass
class Scim:
    """A SCIM client speaking to the bridge under test, authenticated unless told not to."""

    client: TestClient[Any, Any]
    url: str
    backend: Direct
    """Direct access to what the bridge writes to, for assertions that bypass it."""

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        token: str | None = TOKEN,
    ) -> Answer:
        sent = {"Content-Type": "application/scim+json"}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = await self.client.request(method, BASE + path, data=data, headers=sent)
        text = await response.text()
        return Answer(response.status, json.loads(text) if text else None, response.headers)

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> Answer:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> Answer:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, *operations: dict[str, Any], **kw: Any) -> Answer:
        body = {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}
        return await self.request("PATCH", path, body, **kw)

    async def delete(self, path: str, **kw: Any) -> Answer:
        return await self.request("DELETE", path, **kw)

    async def create_user(self, user_name: str, **attributes: Any) -> dict[str, Any]:
        answer = await self.post(
            "/Users", {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}
        )
        assert answer.status == 201, answer.body
        return dict(answer.body)


def write_config(
    directory: Path, url: str, *, mapping: str = "sql-default", extra: str = ""
) -> Path:
    path = directory / "config.toml"
    path.write_text(
        f"""
mapping = "{mapping}"

[server]
listen = "127.0.0.1:8080"
base_path = "{BASE}"
max_body_bytes = 65536
max_page_size = 50

[[auth.tokens]]
env = "SCIM_BRIDGE_TEST_TOKEN"

[connector]
type = "sql"
url = "{url}"
{extra}
"""
    )
    return path


LDAP_PASSWORD_ENV = "SCIM_BRIDGE_TEST_LDAP_PASSWORD"


def write_ldap_config(
    directory: Path,
    slapd: SlapdServer,
    tree: str,
    *,
    mapping: str = "ldap-openldap",
    extra: str = "",
) -> Path:
    """The README's OpenLDAP configuration, on `tree` of the test slapd."""
    path = directory / "config.toml"
    path.write_text(
        f"""
mapping = "{mapping}"

[server]
base_path = "{BASE}"
max_body_bytes = 65536
max_page_size = 50

[[auth.tokens]]
env = "SCIM_BRIDGE_TEST_TOKEN"

[connector]
type = "ldap"
urls = ["{slapd.url}"]
base_dn = "{tree}"
bind_dn = "{slapd.admin_dn}"
password_env = "{LDAP_PASSWORD_ENV}"
pool_size = 4
{extra}
"""
    )
    return path
