"""The access log: one line per request, cheap to write, with nothing a client sent but the path.

aiohttp's default line carries the request line with its query string, the Referer and the
User-Agent. The query of a SCIM request is a filter, and its values are user names and
e-mail addresses, which have no place in a log. Formatting that line, with a timestamp
of its own beside the log record's, also cost a twentieth of a lookup's time.
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import BaseRequest, StreamResponse

LOGGER = logging.getLogger("scim_bridge.access")


class AccessLog(AbstractAccessLogger):
    """`client "METHOD /path" status bytes duration`: the query string is never logged."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %d %.1fms',
            request.remote,
            request.method,
            # As sent, still percent-encoded: decoded, `%0a` would end the line and let a
            # client (without a token) write a line of its own into the log.
            request.rel_url.raw_path.replace('"', "%22"),
            response.status,
            response.body_length,
            time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class _MalformedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (a request line over the limit) with a
    traceback whose text quotes the request line, query string included. That record is
    kept as one line naming the error's kind, without what the client sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = f"{record.msg} (%s; the request is not logged)"
            given = record.args if isinstance(record.args, tuple) else ()
            record.args = (*given, type(error).__name__)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


MALFORMED_REQUESTS = _MalformedRequests()


class _Throttled(logging.Filter):
    """asyncio logs every accept() that fails for want of file descriptors, with a
    traceback, as fast as the loop retries (hundreds of megabytes a minute while
    connections are held): one such record a minute is enough to know."""

    def __init__(self, message: str, interval: float = 60.0) -> None:
        super().__init__()
        self._message = message
        self._interval = interval
        self._last: float | None = None
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self._message):
            return True
        if self._last is not None and record.created - self._last < self._interval:
            self._dropped += 1
            return False
        if self._dropped:
            record.msg = f"{record.msg} ({self._dropped} more since the last one not logged)"
        self._last, self._dropped = record.created, 0
        record.exc_info = record.exc_text = None
        return True


ACCEPT_FAILURES = _Throttled("socket.accept() out of system resource")
