"""The one place where every failure becomes a SCIM Error response (RFC 7644 §3.12).

Connectors raise their own small family, mappings raise translation errors, scim2-models
raises SCIMException and pydantic ValidationError; aiohttp raises HTTP exceptions for
unknown routes, wrong methods and oversize bodies. Each is answered with an Error body
carrying the right status and scimType. Anything else is a bug: it is logged with a
request id and answered 500 with that id only, so no stack trace, SQL or LDAP text ever
reaches a client.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from scim2_models import Error, SCIMException

from bridge.http import BodyError, UnstorableText, UnsupportedMediaType, scim_json_response
from connectors.base import (
    Conflict,
    ConnectorError,
    InvalidValue,
    NotFound,
    PartiallyWritten,
    PreconditionFailed,
    Rejected,
    Unavailable,
)
from mappings import TranslationError, UntranslatableFilter

log = logging.getLogger("scim_bridge.errors")

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """An error the bridge itself raises with an explicit status and scimType."""

    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


def error_response(
    status: int,
    detail: str,
    scim_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return scim_json_response(error_body(status, detail, scim_type), status=status, headers=headers)


def from_validation_error(error: ValidationError) -> ScimError:
    """The first validation problem, with the scimType scim2-models assigns to it."""
    converted: Error = Error.from_validation_errors(error)[0]
    return ScimError(int(converted.status or 400), _described(error), converted.scim_type)


def _described(error: ValidationError) -> str:
    """The first problem as `attribute: what is wrong`, in SCIM names: pydantic's own text
    names Python fields and classes (`external_id`, `User[EnterpriseUser]`)."""
    problems = error.errors(include_url=False, include_input=False)
    if not problems:
        return "invalid request"
    first = problems[0]
    names = [
        to_camel(part)
        for part in first["loc"]
        if isinstance(part, str) and part[:1].islower() and part.isidentifier()
    ]
    # "Value error, " is pydantic's prefix for a validator's own words; a field it names
    # in quotes is named as SCIM names it ('excluded_attributes': 'excludedAttributes').
    message = str(first["msg"]).removeprefix("Value error, ")
    message = _QUOTED_FIELD.sub(lambda found: f"'{to_camel(found[1])}'", message)
    # pydantic names the Python classes a value may be (`or instance of EnterpriseUser`,
    # `Expected str or ScimFilter, got int`): a client knows SCIM's types only.
    message = _INSTANCE_OF.sub("", message).replace("a valid dictionary", "an object")
    message = _EXPECTED.sub(
        lambda found: f"expected {_SCIM_TYPES.get(found[1], 'a value')}", message
    )
    return f"{'.'.join(names)}: {message}" if names else message


_QUOTED_FIELD = re.compile(r"'([a-z]+(?:_[a-z]+)+)'")
_INSTANCE_OF = re.compile(r" or instance of [A-Za-z_]\w*(?:\[[\w, \[\]]*\])?")
"""Brackets nest: `PatchOperation[User[EnterpriseUser, Employment]]`."""
_EXPECTED = re.compile(r"Expected (\w+) or \w+, got \w+")
_SCIM_TYPES = {"str": "a string", "int": "an integer", "bool": "a boolean", "dict": "an object"}


def _safe_detail(detail: str) -> str:
    """Drop pydantic's pointer to its documentation; keep the first lines only."""
    lines = [line for line in detail.splitlines() if "errors.pydantic.dev" not in line]
    return " ".join(line.strip() for line in lines[:3])


def _connector_error(error: ConnectorError) -> ScimError:
    """The service layer has already renamed `error.field` to the SCIM attribute."""
    subject = f"{error.field}: " if error.field else ""
    if isinstance(error, NotFound):
        return ScimError(404, error.message)
    if isinstance(error, Conflict):
        return ScimError(409, f"{subject}{error.message}", "uniqueness")
    if isinstance(error, PreconditionFailed):
        return ScimError(412, error.message)
    if isinstance(error, Unavailable):
        retry = str(error.retry_after or 5)
        return ScimError(503, error.message, None, {"Retry-After": retry})
    if isinstance(error, InvalidValue):
        return ScimError(400, f"{subject}{error.message}", "invalidValue")
    if isinstance(error, Rejected):
        return ScimError(502, error.message)
    if isinstance(error, PartiallyWritten):
        return ScimError(500, f"{error.message}; written nonetheless: {', '.join(error.written)}")
    return ScimError(500, error.message)


def _as_scim_error(error: BaseException) -> ScimError | None:
    if isinstance(error, ScimError):
        return error
    if isinstance(error, SCIMException):
        cause = error.__cause__
        detail = _described(cause) if isinstance(cause, ValidationError) else str(error)
        return ScimError(error.status, _safe_detail(detail), error.scim_type or None)
    if isinstance(error, ValidationError):
        return from_validation_error(error)
    if isinstance(error, UnstorableText):
        return ScimError(400, str(error), "invalidValue")
    if isinstance(error, BodyError):
        return ScimError(400, str(error), "invalidSyntax")
    if isinstance(error, UnsupportedMediaType):
        return ScimError(415, str(error), None, error.headers)
    if isinstance(error, UntranslatableFilter):
        return ScimError(400, str(error), "invalidFilter")
    if isinstance(error, TranslationError):
        return ScimError(400, str(error), "invalidValue")
    if isinstance(error, ConnectorError):
        return _connector_error(error)
    if isinstance(error, web.HTTPRequestEntityTooLarge):
        return ScimError(413, "the request body is larger than this service accepts")
    if isinstance(error, web.HTTPException):
        if error.status < 400:
            return None
        detail = {404: "no such endpoint", 405: "method not allowed on this endpoint"}.get(
            error.status, error.reason
        )
        return ScimError(error.status, detail)
    return None


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as error:  # the one place every failure is answered
        scim_error = _as_scim_error(error)
        if scim_error is None:
            if isinstance(error, web.HTTPException):
                raise
            request_id = uuid.uuid4().hex
            log.exception("request %s failed: %s %s", request_id, request.method, request.path)
            return error_response(500, f"internal error; request id {request_id}")
        headers = dict(scim_error.headers)
        if isinstance(error, web.HTTPMethodNotAllowed):
            headers["Allow"] = ", ".join(sorted(error.allowed_methods))
        return error_response(scim_error.status, scim_error.detail, scim_error.scim_type, headers)
