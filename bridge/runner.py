"""The HTTP runner: aiohttp's, with answers that are SCIM errors and quote nothing.

aiohttp answers a request it cannot parse (a header with a control character, a line
without a colon) itself, before any middleware runs, in plain text that quotes the
offending line: when that line is `Authorization: Bearer ...`, the token goes back in
the body, to every proxy and log on the way. Here such an answer is the SCIM error of
RFC 7644 §3.12 with the same status, naming only what kind of problem it was, and every
answer names the service as `scim-bridge` instead of the Python and aiohttp versions.

The request handler is aiohttp's own (pinned in pyproject.toml), given a subclass that
only replaces `handle_error`; tests/bridge/test_cli.py sends such requests to a served
process and fails if an upgrade stops this from taking effect.
"""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import hdrs, web
from aiohttp.http_exceptions import BadHttpMethod, ContentEncodingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from bridge.errors import error_response
from bridge.http import unreadable_coding

MAX_REQUEST_LINE = 65536
"""Bytes of a request line (method, path and query) the service reads: a long filter
reaches the service, which answers it in SCIM terms (aiohttp's own limit is 8 KiB)."""

SERVER_NAME = "scim-bridge"
"""The Server header of every answer (RFC 9110 §10.2.4 lets it be just the product)."""


class _RequestHandler(RequestHandler):
    """aiohttp's handler of one connection, whose own error answers are SCIM errors."""

    __slots__ = ()  # the same layout as aiohttp's, so that a handler can become one

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own: it logs the failure (bridge.access_log keeps what the client
        # sent out of that record) and refuses when part of an answer went out already.
        super().handle_error(request, status, exc, message)
        if isinstance(exc, ContentEncodingError):
            # `br` or `zstd`, which aiohttp's parser takes on but cannot decode without
            # modules this service does not install: the coding is refused, as any other
            # it does not read is by bridge.http (RFC 9110 §15.5.16).
            refusal = unreadable_coding()
            response = error_response(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, str(refusal), None, refusal.headers
            )
        else:
            status, detail = _refusal(status, exc)
            response = error_response(status, detail)
        response.headers[hdrs.SERVER] = SERVER_NAME
        response.force_close()
        return response


def _refusal(status: int, exc: BaseException | None) -> tuple[int, str]:
    """The status and detail of a request aiohttp's parser refused (always 400 there), as
    RFC 9110 and RFC 6585 name the cases a client can act on."""
    if isinstance(exc, LineTooLong):
        # The limit it names tells the request line from a header field (the C parser
        # gives it as a number, the Python one as text).
        if str(exc.args[1]) == str(MAX_REQUEST_LINE):
            return 414, f"the request line is longer than {MAX_REQUEST_LINE} bytes"
        return 431, "a header field is longer than this service reads"  # RFC 6585 §5
    if isinstance(exc, BadHttpMethod) and "HTTPS" not in exc.message:
        # RFC 9110 §9.1: a method the server does not recognise is 501.
        return 501, "the request method is not one this service implements"
    return status, _detail(status)


def _detail(status: int) -> str:
    if 400 <= status < 500:  # what aiohttp's parser refuses: always 400
        return "the request is not valid HTTP/1.1"
    if status == HTTPStatus.GATEWAY_TIMEOUT:
        return "the request took too long"
    return "internal error"


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        handler.__class__ = _RequestHandler
        return handler


class Runner(web.AppRunner):
    """`web.AppRunner` whose connections are handled by `_RequestHandler`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server
        return server


async def name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    """An `on_response_prepare` signal: the Server header without versions."""
    response.headers[hdrs.SERVER] = SERVER_NAME
