"""Reading SCIM request bodies and writing SCIM responses (RFC 7644 §3.1, §3.8)."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from aiohttp import web

SCIM_CONTENT_TYPE = "application/scim+json"
_JSON_CONTENT_TYPES = {SCIM_CONTENT_TYPE, "application/json", "text/json"}
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""A JSON escape of a UTF-16 surrogate (\\ud800 to \\udfff); raw ones are not UTF-8."""


class BodyError(Exception):
    """A request body that is not a JSON object; answered 400 invalidSyntax."""


class UnstorableText(BodyError):
    """A JSON string no backend can store; answered 400 invalidValue."""


def scim_json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A response with the SCIM media type; RFC 7644 §3.1 asks for it on every answer."""
    # orjson writes UTF-8 bytes at once: the JSON text of a group of 50,000 members is not
    # held twice (as text, then as bytes), and it takes a tenth of the time json takes.
    # Extension objects are keyed by scim2-models' URN, a str subclass: OPT_NON_STR_KEYS.
    return web.Response(
        body=orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        headers=headers,
        content_type=SCIM_CONTENT_TYPE,
        charset="utf-8",
    )


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object.

    Both `application/scim+json` and `application/json` are accepted (RFC 7644 §3.1), and so
    is a missing Content-Type, which some clients omit. A body over the configured limit
    raises aiohttp's 413 exception, turned into a SCIM error by the error middleware.
    """
    content_type = request.content_type
    if request.headers.get("Content-Type") and content_type not in _JSON_CONTENT_TYPES:
        raise BodyError(f"the body must be {SCIM_CONTENT_TYPE}, not {content_type}")
    raw = await request.read()
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BodyError(f"the body is not valid JSON: {_position(error)}") from None
    except RecursionError:
        raise BodyError(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise BodyError("the body holds a number too long to read") from None
    if not isinstance(payload, dict):
        raise BodyError("the body must be a JSON object")
    if _depth(payload) > MAX_DEPTH:
        raise BodyError(f"the body nests deeper than {MAX_DEPTH} levels")
    # JSON escapes can spell lone surrogates (\\ud800), which no backend can store; a
    # body without a surrogate escape cannot hold one, and is not encoded again to know.
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(payload, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise BodyError("the body holds a string that is not valid Unicode") from None
    # PostgreSQL's text cannot hold U+0000 and a directory would cut the value there: one
    # answer for every backend. Only an escape can spell it (JSON refuses the raw byte).
    if b"\\u0000" in raw and _holds_nul(payload):
        raise UnstorableText("the body holds a NUL character (\\u0000), which is not stored")
    return payload


MAX_DEPTH = 32
"""JSON levels a body may nest: a SCIM resource or PATCH needs five or so. Deeper ones
are refused before anything walks them (validation, the NUL check) recursively."""


def _depth(value: dict[str, Any]) -> int:
    """How deep `value` nests, found without recursion (stopping past MAX_DEPTH)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending and deepest <= MAX_DEPTH:
        item, level = pending.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _position(error: UnicodeDecodeError | json.JSONDecodeError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return "it is not UTF-8"
