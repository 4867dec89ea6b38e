"""The password (RFC 7643 §4.1.1, `returned: never`): written when a mapping stores it,
never sent back, filtered or sorted on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from direct import SqlDirect
from scim_client import USER_SCHEMA
from served import serve

WITH_PASSWORD = """
[users]
object = "users"
key = "id"
version = "version"
[users.attributes]
userName = { field = "user_name", unique = true }
password = "title"
"""


async def test_a_mapped_password_is_written_and_never_returned_filtered_or_sorted_on(
    sqlite_direct: SqlDirect,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "with-password.toml").write_text(WITH_PASSWORD)
    scim = await serve(
        sqlite_direct, tmp_path, aiohttp_client, monkeypatch, mapping="with-password.toml"
    )
    created = await scim.post(
        "/Users", {"schemas": [USER_SCHEMA], "userName": "pw", "password": "Secr3t!"}
    )
    assert created.status == 201, created.body
    assert "password" not in created.body
    assert (await sqlite_direct.user("pw") or {})["title"] == "Secr3t!"
    path = f"/Users/{created.body['id']}"
    assert "password" not in (await scim.get(path)).body
    listed = await scim.get("/Users")
    assert all("password" not in user for user in listed.body["Resources"])
    assert "Secr3t" not in str((await scim.get("/Users?attributes=password")).body)
    for query in ('filter=password eq "Secr3t!"', "filter=password pr", "sortBy=password"):
        refused = await scim.get(f"/Users?{query}")
        assert refused.status == 400, (query, refused.body)
        assert "Secr3t" not in str(refused.body)
        if query.startswith("filter"):
            assert refused.body["detail"].endswith("is never returned and cannot be filtered on")
    # A PUT without the password keeps it (not asserted); a PATCH replaces it.
    kept = await scim.put(path, {"schemas": [USER_SCHEMA], "userName": "pw"})
    assert kept.status == 200, kept.body
    assert (await sqlite_direct.user("pw") or {})["title"] == "Secr3t!"
    changed = await scim.patch(path, {"op": "replace", "path": "password", "value": "N3w!"})
    assert changed.status == 200, changed.body
    assert "password" not in changed.body
    assert (await sqlite_direct.user("pw") or {})["title"] == "N3w!"
    # And the service says so (RFC 7644 §5); the presets, which store none, say false.
    config = await scim.get("/ServiceProviderConfig")
    assert config.body["changePassword"] == {"supported": True}


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "remove", "path": "password"},
        {"op": "Remove", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password"},
        {"op": "replace", "path": "password", "value": None},
        {"op": "add", "path": "password", "value": ""},
        {"op": "replace", "value": {"password": None}},
    ],
)
async def test_a_patch_clearing_the_password_clears_it(
    sqlite_direct: SqlDirect,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    operation: dict[str, Any],
) -> None:
    """The password is never read back, so the PATCHed user cannot show its removal:
    without looking at the operations, the old credential stayed valid under a 200."""
    (tmp_path / "with-password.toml").write_text(WITH_PASSWORD)
    scim = await serve(
        sqlite_direct, tmp_path, aiohttp_client, monkeypatch, mapping="with-password.toml"
    )
    created = await scim.post(
        "/Users", {"schemas": [USER_SCHEMA], "userName": "pw", "password": "Secr3t!"}
    )
    path = f"/Users/{created.body['id']}"
    cleared = await scim.patch(path, operation)
    assert cleared.status == 200, cleared.body
    assert (await sqlite_direct.user("pw") or {})["title"] is None
    assert created.headers["ETag"] != cleared.headers["ETag"]
