"""Bound ldap3 connections used from worker threads, so the event loop never waits on LDAP.

ldap3's synchronous strategy blocks on the socket. Each operation runs in a thread of a
pool of `pool_size` threads, on one of `pool_size` connections (one per thread at any
time, so a connection is never shared). A connection that fails is dropped and opened
again with bounded retries (tenacity), trying the configured servers in order, so the
service recovers by itself when the directory comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import select
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import ldap3
import tenacity
from ldap3.core import exceptions as ldap_errors

from connectors.ldap.errors import UNREACHABLE, DirectoryUnavailable
from connectors.ldap.settings import LdapSettings

T = TypeVar("T")

log = logging.getLogger("scim_bridge.ldap")


@dataclass(eq=False)
class Slot:
    """One connection and what a paged-search cursor needs to know of it."""

    connection: ldap3.Connection | None = None
    paging_epoch: int = 0
    """Bumped whenever a paged search starts or the connection is replaced: a server
    keeps one paged search per connection, so a cursor from an older epoch is stale."""

    def start_paging(self) -> int:
        self.paging_epoch += 1
        return self.paging_epoch


class _CheckedTls(ldap3.Tls):  # type: ignore[misc]  # ldap3 is untyped
    """TLS checked by the standard library itself: the chain, and the host name.

    ldap3 turns the SSL context's own host name check off and calls ssl.match_hostname,
    deprecated since Python 3.7 and gone in 3.12. Here the context checks the certificate
    against the host of the URL (an IP address matches the certificate's IP SANs), for
    ldaps:// and for StartTLS alike.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(validate=context.verify_mode)
        self.context = context

    def wrap_socket(self, connection: ldap3.Connection, do_handshake: bool = False) -> None:
        connection.socket = self.context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=True,
            server_hostname=connection.server.host,
        )


def tls_context(settings: LdapSettings) -> ssl.SSLContext:
    """Certificates checked against `ca_file`, or the system's authorities; TLS 1.2 at least."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not settings.verify_certificates:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _servers(settings: LdapSettings) -> list[ldap3.Server]:
    tls = None
    if any(url.startswith("ldaps://") for url in settings.urls) or settings.start_tls:
        tls = _CheckedTls(tls_context(settings))
    return [
        ldap3.Server(url, get_info=ldap3.NONE, tls=tls, connect_timeout=settings.connect_timeout)
        for url in settings.urls
    ]


class _NoStartTls(ldap_errors.LDAPStartTLSError):  # type: ignore[misc]  # ldap3 is untyped
    """The server answered the StartTLS request with a refusal (no TLS configured)."""


class _NoServer(Exception):
    """No configured server could be connected to and bound; `reasons` says why, per URL."""

    def __init__(self, reasons: str) -> None:
        super().__init__(reasons)
        self.reasons = reasons


class ConnectionPool:
    """Runs functions of a bound connection in worker threads."""

    def __init__(self, settings: LdapSettings) -> None:
        self._settings = settings
        self._password = settings.password()
        self._executor = ThreadPoolExecutor(settings.pool_size, thread_name_prefix="ldap")
        self._lock = threading.Lock()
        self._free = [Slot() for _ in range(settings.pool_size)]
        self._closed = False
        self.last_failure: str | None = None
        """Why the last connection attempt failed, for the operator (never for a client)."""

    async def run(
        self, work: Callable[[Slot, ldap3.Connection], T], *, prefer: Slot | None = None
    ) -> T:
        """`work(slot, connection)` in a worker thread, on a bound connection.

        `prefer` asks for a given slot (a paged search continues on the connection that
        holds its cookie); any free one is taken when that one is busy.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work, prefer)

    def _call(self, work: Callable[[Slot, ldap3.Connection], T], prefer: Slot | None) -> T:
        slot = self._acquire(prefer)
        try:
            connection = self._bound(slot)
            try:
                return work(slot, connection)
            except UNREACHABLE:
                self._drop(slot)
                raise
        finally:
            self._release(slot)

    def _acquire(self, prefer: Slot | None) -> Slot:
        # There are as many slots as threads, so a running thread always finds one.
        with self._lock:
            if self._closed:
                raise DirectoryUnavailable("the directory connector is closed")
            slot = prefer if prefer is not None and prefer in self._free else self._free[-1]
            self._free.remove(slot)
            return slot

    def _release(self, slot: Slot) -> None:
        with self._lock:
            self._free.append(slot)

    def _bound(self, slot: Slot) -> ldap3.Connection:
        if slot.connection is not None and not slot.connection.closed:
            if _still_open(slot.connection):
                return slot.connection
            self._drop(slot)
        slot.connection = self._connect()
        slot.paging_epoch += 1
        return slot.connection

    def _connect(self) -> ldap3.Connection:
        """A new bound connection, with bounded retries while no server answers."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_NoServer),
            stop=tenacity.stop_after_attempt(3),
            wait=tenacity.wait_exponential(multiplier=0.1, max=1.0),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._open_one()
        except _NoServer as failed:
            self.last_failure = failed.reasons
            log.warning("cannot connect to the directory: %s", failed.reasons)
            raise DirectoryUnavailable(
                "the directory cannot be reached; retry later",
                retry_after=self._settings.retry_after,
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _open_one(self) -> ldap3.Connection:
        """A bound connection to the first server, in the configured order, that answers.

        ldap3's ServerPool is not used: it sleeps ten seconds between rounds and hides
        why each server failed.
        """
        reasons: list[str] = []
        # Fresh Server objects: ldap3 marks an address that failed as unavailable for a
        # while, and would then fail the next attempt without trying it.
        for url, server in zip(self._settings.urls, _servers(self._settings), strict=True):
            try:
                return self._open_on(server)
            except UNREACHABLE as error:
                reasons.append(f"{url}: {_reason(error, url)}")
        raise _NoServer("; ".join(reasons))

    async def unreachable(self) -> list[str]:
        """`url: why` for each configured server that cannot be connected to and bound
        now, each tried once: a server down behind one that answers goes unnoticed else."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._try_each)

    def _try_each(self) -> list[str]:
        failed: list[str] = []
        for url, server in zip(self._settings.urls, _servers(self._settings), strict=True):
            try:
                self._open_on(server).unbind()
            except UNREACHABLE as error:
                failed.append(f"{url}: {_reason(error, url)}")
            except (
                ldap_errors.LDAPInvalidCredentialsResult,
                ldap_errors.LDAPInappropriateAuthenticationResult,
            ):
                failed.append(f"{url}: the server refused the bind DN's credentials")
            except ldap_errors.LDAPOperationResult as error:
                failed.append(f"{url}: the server refused the connection ({error.description})")
        return failed

    def _open_on(self, server: ldap3.Server) -> ldap3.Connection:
        settings = self._settings
        connection = ldap3.Connection(
            server,
            user=settings.bind_dn or None,
            password=self._password or None,
            auto_bind=ldap3.AUTO_BIND_NONE,
            raise_exceptions=True,
            receive_timeout=int(settings.operation_timeout),
            auto_escape=False,
            auto_encode=True,
            return_empty_attributes=False,
            check_names=False,
            read_only=False,
        )
        try:
            connection.open()
            if _connected_to_itself(connection.socket):
                raise ldap_errors.LDAPSocketOpenError("connection refused (it met itself)")
            if settings.start_tls:
                try:
                    connection.start_tls()
                except ldap_errors.LDAPOperationResult as refused:  # protocolError, mostly
                    raise _NoStartTls(str(refused.description)) from None
            connection.bind()
        except Exception:
            with contextlib.suppress(Exception):
                connection.unbind()
            if connection.socket is not None:
                with contextlib.suppress(OSError):
                    connection.socket.close()
            raise
        return connection

    def _drop(self, slot: Slot) -> None:
        connection, slot.connection = slot.connection, None
        slot.paging_epoch += 1
        if connection is not None:
            with contextlib.suppress(Exception):  # it may be broken already
                connection.unbind()

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            slots = list(self._free)
        await asyncio.get_running_loop().run_in_executor(None, self._close_all, slots)
        self._executor.shutdown(wait=True)

    def _close_all(self, slots: list[Slot]) -> None:
        for slot in slots:
            self._drop(slot)


def _still_open(connection: ldap3.Connection) -> bool:
    """Whether the server has not closed an idle connection (a restart, an idle timeout).

    Every response of an operation is read before the connection goes back to the pool,
    so an idle connection has nothing to read: anything readable is end of file or a
    Notice of Disconnection (RFC 4511 §4.4.1). Such a connection is replaced before use,
    so the first request after the directory comes back succeeds instead of failing on
    the dead socket.
    """
    sock = connection.socket
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


_SSL_REASON = re.compile(r"\[SSL: ([A-Z0-9_]+)\]")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_NO_TLS_ANSWER = frozenset(
    {"UNEXPECTED_EOF_WHILE_READING", "WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"}
)
"""What the TLS layer says when the other end does not speak TLS at all."""


def _reason(error: Exception, url: str) -> str:
    """What went wrong connecting to `url`, in the admin's words rather than ldap3's."""
    text = str(error)
    if "Hostname mismatch" in text or "IP address mismatch" in text:
        return "the server's certificate does not name the host of the URL"
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "the server's certificate could not be verified (check ca_file)"
    if isinstance(error, _NoStartTls):
        return f"the server does not offer StartTLS (it answered {text}): it has no TLS set up"
    if "invalid server address" in text:  # ldap3's words for a failed getaddrinfo
        return f"host name {urllib.parse.urlsplit(url).hostname!r} not found"
    if "refused" in text.lower():
        return "connection refused"
    if "timed out" in text.lower():
        return "connection timed out"
    ssl_reason = _SSL_REASON.search(text)
    if ssl_reason is not None or "EOF occurred in violation of protocol" in text:
        code = ssl_reason.group(1) if ssl_reason is not None else "UNEXPECTED_EOF_WHILE_READING"
        if code in _NO_TLS_ANSWER and url.startswith("ldaps://"):
            return f"TLS handshake failed ({code}): is this port plain ldap://, not ldaps://?"
        return f"TLS handshake failed ({code})"
    system = _ERRNO.search(text)
    if system is not None:
        return system.group(1).strip().lower()
    return type(error).__name__


def _connected_to_itself(connection_socket: socket.socket | None) -> bool:
    """Whether a TCP connection met itself: connecting to a local port nobody listens on,
    within the ephemeral range, the kernel may pick that very port as the source, and the
    socket then reads back what it sends (its own bind request, taken for an answer)."""
    if connection_socket is None:
        return False
    try:
        return bool(connection_socket.getsockname() == connection_socket.getpeername())
    except OSError:
        return False
