"""Replay what OneLogin, Okta and Entra really send (tests/idp/*.json, see its README)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from scim_client import Scim

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


@pytest.mark.parametrize("flow_name", sorted(FLOWS))
async def test_flow_replays_step_by_step(scim: Scim, flow_name: str) -> None:
    flow = FLOWS[flow_name]
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
        for name, key in (step.get("save") or {}).items():
            saved[name] = (
                answer.headers["Location"].rsplit("/", 1)[-1]
                if key == "location"
                else answer.body[key]
            )
