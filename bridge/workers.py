"""More than one serving process (`server.workers`), all accepting on one port.

One Python process runs on one core at a time: parsing HTTP, validating SCIM, mapping and
encoding a backend's protocol are all CPU work, so a single process leaves the other cores
idle however many requests wait. With `workers = N`, the process started by the admin (the
first worker) serves as before and also starts N - 1 copies of itself, each a complete
service with its own connections to the backend. Every worker binds the port with
SO_REUSEPORT, so the kernel spreads new connections across them; a connection stays with
the worker that accepted it, which keeps a directory's paged-search cursors useful.

The copies are fresh processes (not forks): nothing the first one opened, such as a pool of
backend connections bound to its event loop, is shared by accident. A copy that dies is
started again after a pause; a copy whose first worker is gone (killed without its
SIGTERM) stops by itself. Each copy learns it is one from an environment variable that
holds the first worker's pid.

What the workers share is one small board in memory (connectors.forget_board), on which
each tells the others what its writes made stale in their caches; the copies inherit its
descriptor, named by another environment variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from connectors.forget_board import ForgetBoard

log = logging.getLogger(__name__)

WORKER_OF = "SCIM_BRIDGE_WORKER_OF"
"""Set in the environment of the copies: the pid of the worker that started them."""

FORGET_BOARD_FD = "SCIM_BRIDGE_FORGET_BOARD_FD"
"""Set in the environment of the copies: the descriptor of the first worker's board."""

RESTART_PAUSE = 1.0
"""Seconds before a copy that exited is started again (a backend that is down keeps a copy
from starting at all; this keeps that from becoming a busy loop)."""

STOP_GRACE = 15.0
"""Seconds the copies have to finish their requests after SIGTERM before they are killed."""


def parent_of_this_worker(environ: Mapping[str, str]) -> int | None:
    """The first worker's pid when this process is one of its copies, else None."""
    value = environ.get(WORKER_OF, "")
    return int(value) if value.isdigit() else None


def forget_board(environ: Mapping[str, str]) -> ForgetBoard:
    """The board this worker shares with the others: the first worker's, inherited by a
    copy; a new one in the first worker (its copies are handed it by `Copies`).

    A copy whose descriptor holds no board (which only a copy started by hand with the
    variable set can meet) keeps a private one: it says so, since its caches then answer
    from what they read for up to their lifetime after another worker's write.
    """
    if parent_of_this_worker(environ) is None:
        try:
            return ForgetBoard.shared()
        except OSError as error:  # no memory file, no temporary file: one worker is right
            log.error("no forget board for the workers (%s); their caches may lag", error)
            return ForgetBoard.private()
    value = environ.get(FORGET_BOARD_FD, "")
    try:
        return ForgetBoard.attached(int(value))
    except (ValueError, OSError):
        log.error("this worker shares no forget board with the others; its caches may lag")
        return ForgetBoard.private()


async def until_orphaned(parent: int, interval: float = 1.0) -> None:
    """Return once `parent` is no longer this process's parent (it died without stopping us).

    Linux re-parents an orphan to init or to a subreaper, so a changed parent pid is the
    sign; polling keeps this portable and costs nothing measurable once a second.
    """
    while os.getppid() == parent:  # noqa: ASYNC110 (no event tells of a parent's death)
        await asyncio.sleep(interval)


class Copies:
    """The N - 1 copies the first worker starts, kept running until `stop`."""

    def __init__(
        self,
        count: int,
        config: Path,
        listen: str,
        environ: Mapping[str, str],
        board: ForgetBoard,
    ) -> None:
        self._argv = [
            sys.executable,
            "-m",
            "bridge",
            "serve",
            "--config",
            str(config),
            "--listen",
            listen,
        ]
        self._environ = {**environ, WORKER_OF: str(os.getpid())}
        self._handed: tuple[int, ...] = ()
        if board.fd is not None:
            self._environ[FORGET_BOARD_FD] = str(board.fd)
            self._handed = (board.fd,)
        self._count = count
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes.values()]

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._keep(slot)) for slot in range(self._count)]

    async def _keep(self, slot: int) -> None:
        """Run copy number `slot`, and again whenever it exits while the service runs."""
        while not self._stopping:
            try:
                process = await asyncio.create_subprocess_exec(
                    *self._argv, env=self._environ, pass_fds=self._handed
                )
            except OSError as error:  # out of processes or memory: try again later
                log.error("cannot start worker %d: %s", slot + 2, error.strerror)
                await asyncio.sleep(RESTART_PAUSE)
                continue
            self._processes[slot] = process
            status = await process.wait()
            if self._stopping:
                return
            log.warning(
                "worker %d (pid %d) exited with status %d; starting it again",
                slot + 2,
                process.pid,
                status,
            )
            await asyncio.sleep(RESTART_PAUSE)

    async def stop(self) -> None:
        """SIGTERM to every copy, SIGKILL to those still running after STOP_GRACE."""
        self._stopping = True
        running = [p for p in self._processes.values() if p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(process.wait()) for process in running]
        if waits:
            _, late = await asyncio.wait(waits, timeout=STOP_GRACE)
            for process in running:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            if late:
                await asyncio.wait(late)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for process in self._processes.values():  # one started while stopping began
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
