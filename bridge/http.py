"""Reading SCIM request bodies and writing SCIM responses (RFC 7644 §3.1, §3.8)."""

from __future__ import annotations

import codecs
import json
import math
import re
from typing import Any, NoReturn

import orjson
from aiohttp import web

SCIM_CONTENT_TYPE = "application/scim+json"
_JSON_CONTENT_TYPES = {SCIM_CONTENT_TYPE, "application/json", "text/json"}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""A JSON escape of a UTF-16 surrogate (\\ud800 to \\udfff); raw ones are not UTF-8."""


class BodyError(Exception):
    """A request body that is not a JSON object; answered 400 invalidSyntax."""


class UnstorableText(BodyError):
    """A JSON string no backend can store; answered 400 invalidValue."""


class UnsupportedMediaType(Exception):
    """A body in a media type, charset or content coding this service does not read;
    answered 415 (RFC 9110 §15.5.16), not 400: the body may be fine, only its declared
    form is not."""

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}


READ_CODINGS = ("gzip", "deflate")
"""The content codings a body may come in (RFC 9110 §8.4): those aiohttp decodes with
the standard library alone. It skips any other (the body would be read as JSON still
compressed), or fails on `br` and `zstd` without their optional modules."""


def unreadable_coding() -> UnsupportedMediaType:
    """The refusal of a body in a content coding this service does not read, naming those
    it reads in Accept-Encoding (RFC 9110 §15.5.16); raised here, and answered by
    bridge.runner for the codings aiohttp's parser fails on before any handler runs."""
    return UnsupportedMediaType(
        f"the body's Content-Encoding is not one this service reads: {', '.join(READ_CODINGS)}"
        " or none",
        headers={"Accept-Encoding": ", ".join(READ_CODINGS)},
    )


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
    is a missing Content-Type, which some clients omit; another type is answered 415. A body
    over the configured limit raises aiohttp's 413 exception, turned into a SCIM error by
    the error middleware.
    """
    content_type = request.content_type
    if request.headers.get("Content-Type") and content_type not in _JSON_CONTENT_TYPES:
        raise UnsupportedMediaType(f"the body must be {SCIM_CONTENT_TYPE}, not {content_type}")
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding not in ("", "identity", *READ_CODINGS):
        raise unreadable_coding()
    try:
        raw = await request.read()
    except web.RequestPayloadError:  # what the Content-Encoding says it is, it is not
        raise BodyError(f"the body is not valid {coding or 'HTTP'} data") from None
    except ConnectionResetError:  # the connection closed before the body arrived whole
        raise BodyError("the body did not arrive whole") from None
    text = _decoded(raw, request.charset)
    try:
        payload = _STRICT_JSON.decode(text)
    except json.JSONDecodeError as error:
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
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(payload, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise BodyError("the body holds a string that is not valid Unicode") from None
    # PostgreSQL's text cannot hold U+0000 and a directory would cut the value there: one
    # answer for every backend. Only an escape can spell it (JSON refuses the raw character).
    if "\\u0000" in text and _holds_nul(payload):
        raise UnstorableText("the body holds a NUL character (\\u0000), which is not stored")
    return payload


def _decoded(raw: bytes, charset: str | None) -> str:
    """The body as text, in the charset its Content-Type declares.

    RFC 8259 §8.1 asks for UTF-8, but a client that declares another charset (RFC 9110
    §8.3.2) is read in it, whichever Python knows; one it does not know is 415. Without a
    charset, or with `utf-16` or `utf-32` whose byte order the body does not mark, the
    encoding is told from the first bytes as `json.loads` does (Python alone would take
    the machine's byte order, RFC 2781 §4.3 says big-endian: a JSON text's first character
    is ASCII, which tells). A byte order mark is ignored (RFC 8259 §8.1 allows that).
    """
    try:
        codec = codecs.lookup(charset).name if charset is not None else None
        if codec in _NOT_CHARSETS:
            raise LookupError(codec)
        if codec is None or codec in _UNMARKED_ORDER:
            encoding: str = json.detect_encoding(raw)
        else:
            encoding = codec
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        raise BodyError(f"the body is not valid {charset or 'UTF-8'}") from None
    except (LookupError, ValueError):  # an unknown name, or one holding a NUL
        detail = f"the charset {charset!r} is not one this service reads"
        raise UnsupportedMediaType(detail) from None
    if codec not in (None, "utf-8") and not text.isascii() and _SURROGATE.search(text):
        # A decoder other than UTF-8's (which refuses them itself) may yield a lone
        # surrogate, which no backend stores.
        raise BodyError(f"the body is not valid {charset}")
    return text.removeprefix("\ufeff")


_UNMARKED_ORDER = {"utf-16", "utf-32"}
_NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "utf-7", "idna", "punycode"}
"""Codecs Python knows that are no charset of a text (RFC 2978): escape languages that
spell any code point, lone surrogates included."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_constant(name: str) -> NoReturn:
    """NaN, Infinity and -Infinity are no JSON (RFC 8259 §6), though Python's json reads them."""
    raise BodyError(f"the body is not valid JSON: {name} is not a JSON number")


def _finite_float(literal: str) -> float:
    """A number too large for a float (`1e999999`) is refused rather than read as infinity,
    which no JSON text can spell and no backend column stores (RFC 8259 §6, §9)."""
    value = float(literal)
    if math.isinf(value):
        raise BodyError("the body holds a number too large to read")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose names are unique: RFC 8259 §4 says they SHOULD be, and a duplicate
    makes a provisioning request ambiguous (which `userName` did the client mean?)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise BodyError(f"the body names {name[:64]!r} more than once in one object")
            seen.add(name)
    return result


_STRICT_JSON = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys
)
"""Python's JSON decoder, refusing what RFC 8259 does not allow. The constant and float
hooks are called only for NaN, Infinity and numbers with a fraction or exponent, which a
SCIM body seldom holds: they cost nothing measurable. The pairs hook is called for every
object: on a 1 KB user body (8 objects), 8.1 µs instead of 5.4 µs (timeit, best of 7)."""


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


def _position(error: json.JSONDecodeError) -> str:
    return f"{error.msg} at line {error.lineno} column {error.colno}"
