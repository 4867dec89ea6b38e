"""Filters on a multi-valued attribute held in one text column with `split`, end to end
(RFC 7644 §3.4.2.2: the attribute matches when one of its values matches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from direct import SqlDirect
from scim_client import USER_SCHEMA
from served import serve

TAGS = "urn:example:params:scim:schemas:extension:tags:2.0:User"

MAPPING = f"""
[users]
object = "users"
key = "id"
version = "version"
[users.attributes]
userName = {{ field = "user_name", unique = true }}
[users.attributes."{TAGS}"]
tags = {{ field = "title", split = "," }}
[extensions."{TAGS}".attributes]
tags = {{ type = "string", multi_valued = true }}
"""


async def test_a_value_holding_the_separator_matches_no_user(
    sqlite_direct: SqlDirect,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "tags.toml").write_text(MAPPING)
    scim = await serve(sqlite_direct, tmp_path, aiohttp_client, monkeypatch, mapping="tags.toml")
    for name, tags in (("u1", ["a", "B"]), ("u2", ["b"]), ("u3", ["c", "d"])):
        body = {"schemas": [USER_SCHEMA, TAGS], "userName": name, TAGS: {"tags": tags}}
        created = await scim.post("/Users", body)
        assert created.status == 201, created.body

    async def found(text: str) -> set[str]:
        answer = await scim.get(f"/Users?filter={quote(text)}")
        assert answer.status == 200, answer.body
        return {user["userName"] for user in answer.body["Resources"]}

    assert await found(f'{TAGS}:tags eq "a,B"') == set()
    assert await found(f'{TAGS}:tags co ","') == set()
    assert await found(f'not ({TAGS}:tags co ",")') == {"u1", "u2", "u3"}
    assert await found(f'{TAGS}:tags eq "b"') == {"u1", "u2"}
    assert await found(f'{TAGS}:tags co "d"') == {"u3"}
