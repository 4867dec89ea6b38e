"""Replay what OneLogin, Okta and Entra really send (tests/idp/*.json, see its README).

Every flow runs on every backend (SQLite, PostgreSQL, MariaDB, OpenLDAP) with all quirks
tolerated at once. After the steps named in idp_checkpoints, the backend is read directly
(never through the bridge) for what the flow set; every resource answered is checked to
be RFC-shaped, whatever shape the request had.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from direct import Direct, group_members, user_state
from idp_checkpoints import CHECKPOINTS, Expectation, Gone, GoneGroup, Members, User
from scim2_models import Context, Group
from scim_client import ENTERPRISE, Scim

from mappings import load_mapping

FLOWS = {
    path.stem: json.loads(path.read_text())
    for path in sorted((Path(__file__).parent.parent / "idp").glob("*.json"))
}


def _substitute(value: Any, saved: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: saved.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_substitute(item, saved) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, saved) for key, item in value.items()}
    return value


def _contains(actual: Any, expected: Any) -> bool:
    """The subset check the flows' README defines."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _contains(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and all(
            any(_contains(item, wanted) for item in actual) for wanted in expected
        )
    return bool(actual == expected)


def test_every_flow_is_copied_and_every_checkpoint_names_a_step() -> None:
    shared = Path(__file__).parents[3] / "shared" / "idp"
    if shared.is_dir():
        assert sorted(path.name for path in shared.glob("*.json")) == [
            f"{name}.json" for name in FLOWS
        ]
    assert set(CHECKPOINTS) == set(FLOWS)
    for name, checkpoints in CHECKPOINTS.items():
        steps = {step["name"] for step in FLOWS[name]["steps"]}
        assert set(checkpoints) <= steps, name


def assert_rfc_shaped(body: Any, model: Any) -> None:
    """A User or Group as RFC 7643 has it: validated by scim2-models as a response."""
    resources = body.get("Resources", [body]) if isinstance(body, dict) else []
    for resource in resources:
        schemas = resource.get("schemas", [])
        if "urn:ietf:params:scim:schemas:core:2.0:User" in schemas:
            model.model_validate(resource, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
            assert isinstance(resource.get("active", True), bool)
            assert isinstance(resource.get("emails", []), list)
            manager = resource.get(ENTERPRISE, {}).get("manager")
            if manager is not None:
                assert set(manager) == {"value", "$ref", "displayName"}, manager
                assert manager["$ref"].endswith(f"/Users/{manager['value']}")
        elif "urn:ietf:params:scim:schemas:core:2.0:Group" in schemas:
            Group.model_validate(resource, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


async def assert_backend_holds(backend: Direct, expectations: list[Expectation], step: str) -> None:
    for expected in expectations:
        if isinstance(expected, User):
            state = await user_state(backend, expected.name)
            assert state is not None, (step, expected.name, "missing")
            actual = {key: state[key] for key in expected.fields}
            assert actual == expected.fields, (step, expected.name)
        elif isinstance(expected, Gone):
            assert await user_state(backend, expected.name) is None, (step, expected.name)
        elif isinstance(expected, Members):
            members = await group_members(backend, expected.group)
            assert members == set(expected.members), (step, expected.group)
        elif isinstance(expected, GoneGroup):
            assert await group_members(backend, expected.group) is None, (step, expected.group)


@pytest.mark.parametrize("flow_name", sorted(FLOWS))
async def test_flow_replays_step_by_step(scim: Scim, flow_name: str) -> None:
    flow = FLOWS[flow_name]
    preset = "ldap-openldap" if scim.backend.name == "ldap" else "sql-default"
    user_model = load_mapping(preset).users.model
    checkpoints = CHECKPOINTS[flow_name]
    saved: dict[str, str] = {}
    for step in flow["steps"]:
        headers = {**flow.get("headers", {}), **step.get("headers", {})}
        body = _substitute(step.get("body"), saved)
        raw = json.dumps(body).encode() if body is not None else None
        answer = await scim.request(
            step["method"], _substitute(step["path"], saved), raw=raw, headers=headers
        )
        assert answer.status in step["expect_status"], (step["name"], answer.status, answer.body)
        expected = _substitute(step.get("expect_body"), saved)
        if expected is not None and answer.status != 204:
            assert _contains(answer.body, expected), (step["name"], answer.body)
        if answer.status < 300 and answer.body is not None:
            assert_rfc_shaped(answer.body, user_model)
        for name, key in (step.get("save") or {}).items():
            saved[name] = (
                answer.headers["Location"].rsplit("/", 1)[-1]
                if key == "location"
                else answer.body[key]
            )
        await assert_backend_holds(scim.backend, checkpoints.get(step["name"], []), step["name"])
