"""The manager in a PATCH whose path is the enterprise extension itself, on every backend.

`{"op": "add", "path": "urn:...:enterprise:2.0:User", "value": {"manager": "1"}}` was 400
invalidValue ("manager: Input should be an object") while the same value sent without a
path was 200: the README promises the manager's bare-id form (Entra's) to every client,
whichever of the two equivalent shapes RFC 7644 §3.5.2.1 lets it choose.
"""

from __future__ import annotations

from typing import Any

import pytest
from scim_client import ENTERPRISE, Scim

LEGACY_ENTERPRISE = "urn:scim:schemas:extension:enterprise:2.0"

MANAGER_FORMS = [
    pytest.param(lambda id: id, id="bare-id"),
    pytest.param(lambda id: {"value": id}, id="value"),
    pytest.param(lambda id: [{"$ref": None, "value": id}], id="entra-list"),
    pytest.param(lambda id: {"managerId": id}, id="managerId"),
]


def _manager(body: dict[str, Any]) -> Any:
    return body.get(ENTERPRISE, {}).get("manager")


@pytest.mark.parametrize("op", ["add", "replace", "Replace"])
@pytest.mark.parametrize("form", MANAGER_FORMS)
async def test_a_manager_under_the_extension_path_is_set_as_without_a_path(
    scim: Scim, op: str, form: Any
) -> None:
    boss = await scim.create_user("boss")
    user = await scim.create_user("alice")
    where = f"/Users/{user['id']}"
    answer = await scim.patch(
        where, {"op": op, "path": ENTERPRISE, "value": {"manager": form(boss["id"])}}
    )
    assert answer.status == 200, answer.body
    assert _manager(answer.body)["value"] == boss["id"]
    assert _manager((await scim.get(where)).body)["value"] == boss["id"]


@pytest.mark.parametrize("path", [ENTERPRISE.lower(), ENTERPRISE.upper(), LEGACY_ENTERPRISE])
async def test_the_extension_path_is_compared_as_urns_are(scim: Scim, path: str) -> None:
    """URNs compare case-insensitively (RFC 8141 §3.1, RFC 7643 §2.1), and OneLogin's
    legacy template names the extension by its SCIM 1.1 draft name."""
    boss = await scim.create_user("boss")
    user = await scim.create_user("alice")
    answer = await scim.patch(
        f"/Users/{user['id']}", {"op": "add", "path": path, "value": {"manager": boss["id"]}}
    )
    assert answer.status == 200, answer.body
    assert _manager(answer.body)["value"] == boss["id"]


@pytest.mark.parametrize("op", ["add", "replace"])
async def test_an_empty_manager_under_the_extension_path_removes_it(scim: Scim, op: str) -> None:
    """Entra's `""` removes the manager, under the extension's path as under the manager's;
    the extension's other attributes are left as they were (RFC 7644 §3.5.2.3)."""
    boss = await scim.create_user("boss")
    user = await scim.create_user(
        "alice", **{ENTERPRISE: {"department": "Research", "manager": {"value": boss["id"]}}}
    )
    where = f"/Users/{user['id']}"
    answer = await scim.patch(where, {"op": op, "path": ENTERPRISE, "value": {"manager": ""}})
    assert answer.status == 200, answer.body
    after = (await scim.get(where)).body
    assert _manager(after) is None
    assert after[ENTERPRISE]["department"] == "Research"


async def test_other_attributes_under_the_extension_path_are_unaffected(scim: Scim) -> None:
    boss = await scim.create_user("boss")
    user = await scim.create_user("alice", **{ENTERPRISE: {"department": "Research"}})
    where = f"/Users/{user['id']}"
    answer = await scim.patch(
        where,
        {"op": "replace", "path": ENTERPRISE, "value": {"manager": boss["id"]}},
        {"op": "replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "1001"},
        {"op": "replace", "path": "title", "value": "Lead"},
    )
    assert answer.status == 200, answer.body
    after = (await scim.get(where)).body
    assert after[ENTERPRISE] == {
        "department": "Research",
        "employeeNumber": "1001",
        "manager": after[ENTERPRISE]["manager"],
    }
    assert after[ENTERPRISE]["manager"]["value"] == boss["id"]
    assert after["title"] == "Lead"


@pytest.mark.parametrize("key", [ENTERPRISE.lower(), LEGACY_ENTERPRISE])
async def test_a_path_less_value_keyed_by_another_name_of_the_extension(
    scim: Scim, key: str
) -> None:
    """Without a path, the extension's object was normalised only under its exact name."""
    boss = await scim.create_user("boss")
    user = await scim.create_user("alice")
    answer = await scim.patch(
        f"/Users/{user['id']}", {"op": "add", "value": {key: {"manager": boss["id"]}}}
    )
    assert answer.status == 200, answer.body
    assert _manager(answer.body)["value"] == boss["id"]
