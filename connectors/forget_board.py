"""What one worker's writes made stale, told to the caches of every worker.

With `server.workers` above one, the service is several processes (bridge.workers), and each
keeps caches of its own: connectors.ldap.directory.RefCache holds DN -> (id, display name)
for a short while, so that a page of users or a user's groups do not cost one directory read
per reference. A write forgets the DNs it makes stale in its own process's cache; without
more, another worker would go on answering from its copy (the id of a user deleted and made
again under the same name, a manager's former display name) until the copy expired.

So every write also tells the keys it made stale here, and every cache reads what was told
since it last looked before it answers. The board is a small memory file that the first
worker makes and hands to the copies as an inherited descriptor: a count of keys told, then
a ring of `SLOTS` key digests (BLAKE2b: the same in every process, unlike `hash()`).
Writers take a lock: a thread lock, and a POSIX record lock, which belongs to the process
even on a descriptor the processes share (flock's would be shared with it). Readers take
none: they read the count, the digests since their own count, and the count again; one that
fell `SLOTS` or more behind (the ring went round meanwhile) is told to forget everything.

The same descriptor gives the workers a lock per key (`holding`): a record lock on one byte
past the ring, among `HOLDS`, with a thread lock for the threads of one process (record
locks do not tell them apart). A write that must not meet another write of the same entry
in any worker (a conditional one, which reads the version and then writes) holds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SLOTS = 4096
"""Keys the ring holds: a cache that read the board this many writes ago forgets all."""

DIGEST_BYTES = 16
"""Length of a key's digest: collisions (a key forgotten for another) are beyond reach."""

HOLDS = 1024
"""Keys held apart at once: two keys that share a byte wait for each other, no more."""

_COUNT = struct.Struct("<Q")
SIZE = _COUNT.size + SLOTS * DIGEST_BYTES
"""The ring's bytes: the record locks of `holding` lie past them, never in them."""


def digest(key: str) -> bytes:
    """How a key is told, and how a cache that reads the board keys its entries."""
    return hashlib.blake2b(key.encode(), digest_size=DIGEST_BYTES).digest()


class ForgetBoard:
    """The keys told stale, in the order told; `private()` for a service of one process."""

    def __init__(self, memory: mmap.mmap, fd: int | None) -> None:
        self._memory = memory
        self._fd = fd
        self._lock = threading.Lock()
        self._holds = [threading.Lock() for _ in range(HOLDS)]

    @classmethod
    def private(cls) -> ForgetBoard:
        """A board that only this process reads (one worker, a test, `check`)."""
        return cls(mmap.mmap(-1, SIZE), None)

    @classmethod
    def shared(cls) -> ForgetBoard:
        """A new board whose descriptor (`fd`) the copies of this worker inherit."""
        try:
            fd = os.memfd_create("scim-bridge-forget-board")
        except (AttributeError, OSError):  # not Linux, or refused: a temporary file serves
            with tempfile.TemporaryFile() as file:
                fd = os.dup(file.fileno())
        os.ftruncate(fd, SIZE)
        return cls.attached(fd)

    @classmethod
    def attached(cls, fd: int) -> ForgetBoard:
        """The board behind an inherited descriptor; OSError when it holds none."""
        if os.fstat(fd).st_size != SIZE:
            raise OSError(f"descriptor {fd} is not a forget board")
        return cls(mmap.mmap(fd, SIZE), fd)

    @property
    def fd(self) -> int | None:
        """The descriptor to hand to the copies (None: a private board)."""
        return self._fd

    def told(self) -> int:
        """How many keys have been told since the board was made."""
        return int(_COUNT.unpack_from(self._memory, 0)[0])

    def tell(self, key_digest: bytes) -> None:
        """Tell a key (its `digest`) stale, after the write that made it so.

        One at a time: a reader `SLOTS - 1` behind is still reading the slot after the
        one written here, and only the count, written after the slot, tells it that slot
        was overwritten; a second digest written before the count would go unnoticed.
        """
        with self._lock:
            # The ring's bytes only: a lock to the end of the file would take (and its
            # release drop) this process's `holding` locks past it.
            if self._fd is not None:
                fcntl.lockf(self._fd, fcntl.LOCK_EX, SIZE, 0, os.SEEK_SET)
            try:
                count = self.told()
                at = _COUNT.size + (count % SLOTS) * DIGEST_BYTES
                self._memory[at : at + DIGEST_BYTES] = key_digest
                _COUNT.pack_into(self._memory, 0, count + 1)  # after the digest it counts
            finally:
                if self._fd is not None:
                    fcntl.lockf(self._fd, fcntl.LOCK_UN, SIZE, 0, os.SEEK_SET)

    @contextmanager
    def holding(self, key: str) -> Iterator[None]:
        """Hold `key` against every thread of every worker until the block ends; blocks
        while another holds it (called from a thread of its own, not the event loop)."""
        at = int.from_bytes(digest(key)[:4], "little") % HOLDS
        with self._holds[at]:
            if self._fd is None:
                yield
                return
            fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, SIZE + at, os.SEEK_SET)
            try:
                yield
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, SIZE + at, os.SEEK_SET)

    def told_since(self, count: int) -> tuple[int, list[bytes] | None]:
        """The count now, and the digests told since `count` (a reader's last count);
        None instead of the digests when some were overwritten before they were read."""
        now = self.told()
        if now - count >= SLOTS:
            return now, None
        digests = []
        for position in range(count, now):
            at = _COUNT.size + (position % SLOTS) * DIGEST_BYTES
            digests.append(self._memory[at : at + DIGEST_BYTES])
        if self.told() - count >= SLOTS:  # the ring went round while it was read
            return now, None
        return now, digests
