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
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import ldap3
import tenacity

from connectors.ldap.errors import UNREACHABLE, DirectoryUnavailable
from connectors.ldap.settings import LdapSettings

T = TypeVar("T")


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


def _servers(settings: LdapSettings) -> ldap3.ServerPool:
    tls = None
    if any(url.startswith("ldaps://") for url in settings.urls) or settings.start_tls:
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if settings.verify_certificates else ssl.CERT_NONE,
            ca_certs_file=settings.ca_file,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
    servers = [
        ldap3.Server(url, get_info=ldap3.NONE, tls=tls, connect_timeout=settings.connect_timeout)
        for url in settings.urls
    ]
    # FIRST: always the first server that answers; one round over the list per attempt.
    return ldap3.ServerPool(servers, pool_strategy=ldap3.FIRST, active=1, exhaust=False)


class ConnectionPool:
    """Runs functions of a bound connection in worker threads."""

    def __init__(self, settings: LdapSettings) -> None:
        self._settings = settings
        self._servers = _servers(settings)
        self._password = settings.password()
        self._executor = ThreadPoolExecutor(settings.pool_size, thread_name_prefix="ldap")
        self._lock = threading.Lock()
        self._free = [Slot() for _ in range(settings.pool_size)]
        self._closed = False

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
            return slot.connection
        slot.connection = self._connect()
        slot.paging_epoch += 1
        return slot.connection

    def _connect(self) -> ldap3.Connection:
        settings = self._settings
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(UNREACHABLE),
            stop=tenacity.stop_after_attempt(3),
            wait=tenacity.wait_exponential(multiplier=0.1, max=1.0),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    connection = ldap3.Connection(
                        self._servers,
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
                    connection.open()
                    if settings.start_tls:
                        connection.start_tls()
                    connection.bind()
                    return connection
        except UNREACHABLE:
            raise DirectoryUnavailable(
                "the directory cannot be reached; retry later",
                retry_after=settings.retry_after,
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

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
