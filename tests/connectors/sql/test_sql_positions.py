"""Positions of recent pages on their own: what is offered, for how long, how many."""

from __future__ import annotations

from manual_clock import ManualClock

from connectors.sql.positions import LIFETIME, MOST, Positions


def test_a_page_continues_where_a_recent_page_of_the_same_query_ended() -> None:
    positions = Positions()
    positions.remember(("users", None), 100, 4711)
    assert positions.after(("users", None), 100) == 4711
    assert positions.after(("users", None), 200) is None  # no page ended there
    assert positions.after(("groups", None), 100) is None  # another query
    assert positions.after(("users", None), 0) is None  # the first page has no position


def test_an_old_position_is_not_offered() -> None:
    clock = ManualClock(1000.0)
    positions = Positions(clock)
    positions.remember("q", 100, 1)
    clock.now += LIFETIME / 2
    assert positions.after("q", 100) == 1
    clock.now += LIFETIME
    assert positions.after("q", 100) is None


def test_only_the_most_recent_positions_are_kept() -> None:
    positions = Positions()
    for index in range(1, MOST + 2):
        positions.remember("q", index, index)
    assert positions.after("q", 1) is None  # the oldest was dropped
    assert positions.after("q", 2) == 2
    assert positions.after("q", MOST + 1) == MOST + 1


def test_a_query_that_cannot_be_hashed_has_no_positions() -> None:
    positions = Positions()
    unhashable = ("users", ["a", "list"])
    positions.remember(unhashable, 100, 1)
    assert positions.after(unhashable, 100) is None
