"""The bounded, expiring map the connectors keep paging positions in."""

from __future__ import annotations

from manual_clock import ManualClock

from connectors.recent import Recent


def test_a_value_is_kept_for_its_lifetime_then_dropped() -> None:
    clock = ManualClock()
    recent: Recent[str, int] = Recent(lifetime=10.0, most=4, clock=clock)
    recent.put("a", 1)
    clock.now = 10.0
    assert recent.get("a") == 1
    clock.now = 10.5
    assert recent.get("a") is None


def test_take_gives_a_value_once() -> None:
    clock = ManualClock()
    recent: Recent[str, int] = Recent(lifetime=10.0, most=4, clock=clock)
    recent.put("a", 1)
    assert recent.take("a") == 1
    assert recent.take("a") is None
    recent.put("b", 2)
    clock.now = 11.0
    assert recent.take("b") is None  # expired


def test_the_oldest_goes_first_and_a_put_makes_a_key_the_newest() -> None:
    recent: Recent[str, int] = Recent(lifetime=10.0, most=2, clock=ManualClock())
    recent.put("a", 1)
    recent.put("b", 2)
    recent.put("a", 3)  # now newer than b
    recent.put("c", 4)
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == (3, None, 4)
