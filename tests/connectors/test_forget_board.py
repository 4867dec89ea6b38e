"""connectors.forget_board: keys one process tells stale reach every process's caches."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bridge.workers import FORGET_BOARD_FD, WORKER_OF, forget_board
from connectors.base import MemberRef
from connectors.forget_board import SLOTS, ForgetBoard, digest
from connectors.ldap.directory import RefCache

ADA = "uid=ada,ou=people,dc=example,dc=org"
BOB = "uid=bob,ou=people,dc=example,dc=org"


def test_a_reader_gets_the_digests_told_since_its_count_in_order() -> None:
    board = ForgetBoard.private()
    start = board.told()
    for key in ("a", "b", "c"):
        board.tell(digest(key))
    assert board.told_since(start) == (start + 3, [digest("a"), digest("b"), digest("c")])
    assert board.told_since(start + 2) == (start + 3, [digest("c")])
    assert board.told_since(start + 3) == (start + 3, [])


def test_a_reader_that_fell_a_whole_ring_behind_is_told_to_forget_everything() -> None:
    board = ForgetBoard.private()
    for n in range(SLOTS - 1):
        board.tell(digest(str(n)))
    assert board.told_since(0) == (SLOTS - 1, [digest(str(n)) for n in range(SLOTS - 1)])
    board.tell(digest("one more"))  # the first digest's slot is written again
    assert board.told_since(0) == (SLOTS, None)
    assert board.told_since(1) == (
        SLOTS,
        [digest(str(n)) for n in range(1, SLOTS - 1)] + [digest("one more")],
    )


def test_another_process_tells_on_the_inherited_descriptor() -> None:
    board = ForgetBoard.shared()
    assert board.fd is not None
    teller = (
        "import sys; from connectors.forget_board import ForgetBoard, digest; "
        "ForgetBoard.attached(int(sys.argv[1])).tell(digest(sys.argv[2]))"
    )
    for name in (ADA, BOB):
        subprocess.run(
            [sys.executable, "-c", teller, str(board.fd), name], check=True, pass_fds=[board.fd]
        )
    assert board.told_since(0) == (2, [digest(ADA), digest(BOB)])


def test_a_key_held_here_is_held_against_another_process_even_after_a_tell() -> None:
    """A record lock is the process's: tell()'s lock, taken to the end of the file, would
    have taken the held byte too, and its release dropped the hold."""
    board = ForgetBoard.shared()
    assert board.fd is not None
    tries = (
        "import sys; from connectors.forget_board import ForgetBoard; "
        "import threading, time; board = ForgetBoard.attached(int(sys.argv[1])); "
        "got = threading.Event(); "
        "threading.Thread(target=lambda: (board.holding(sys.argv[2]).__enter__(), got.set()), "
        "daemon=True).start(); "
        "print('held' if got.wait(0.5) else 'waited')"
    )

    def other_process_gets(key: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", tries, str(board.fd), key],
            check=True,
            capture_output=True,
            text=True,
            pass_fds=[board.fd],
        )
        return done.stdout.strip()

    with board.holding("group:a"):
        board.tell(digest(ADA))
        assert other_process_gets("group:a") == "waited"
        assert other_process_gets("group:b") == "held"
    assert other_process_gets("group:a") == "held"


def test_a_cache_forgets_what_another_cache_on_its_board_was_told() -> None:
    board = ForgetBoard.private()
    here, there = RefCache(board=board), RefCache(board=board)
    for cache in (here, there):
        cache.put(ADA, MemberRef(id="1", display="Ada"), cache.stamp())
        cache.put(BOB, MemberRef(id="2", display="Bob"), cache.stamp())
    here.forget(ADA.upper())  # a DN compares without case
    assert there.get(ADA) == (False, None)
    assert there.get(BOB) == (True, MemberRef(id="2", display="Bob"))
    assert here.get(ADA) == (False, None)


def test_what_a_read_found_is_not_kept_when_its_dn_was_told_stale_during_the_read() -> None:
    board = ForgetBoard.private()
    reader, writer = RefCache(board=board), RefCache(board=board)
    stamp = reader.stamp()  # the read begins: the user is still "1"
    writer.forget(ADA)  # another worker deletes it and makes it again meanwhile
    reader.put(ADA, MemberRef(id="1", display="Ada"), stamp)
    reader.put(BOB, MemberRef(id="2", display="Bob"), stamp)  # not told: kept
    assert reader.get(ADA) == (False, None)
    assert reader.get(BOB) == (True, MemberRef(id="2", display="Bob"))


def test_a_cache_that_fell_a_whole_ring_behind_forgets_everything() -> None:
    board = ForgetBoard.private()
    cache = RefCache(board=board)
    cache.put(BOB, MemberRef(id="2", display="Bob"), cache.stamp())
    for n in range(SLOTS):  # none of them Bob
        board.tell(digest(str(n)))
    assert cache.get(BOB) == (False, None)


def test_a_copy_whose_descriptor_holds_no_board_keeps_a_private_one_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with open(os.devnull, "rb") as null:  # a descriptor, but not a board
        for value in ("not a number", str(null.fileno())):
            board = forget_board({WORKER_OF: "1", FORGET_BOARD_FD: value})
            assert board.fd is None
    assert caplog.text.count("this worker shares no forget board with the others") == 2
    assert forget_board({}).fd is not None  # the first worker makes a board to share
