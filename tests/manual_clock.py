"""A clock that moves only when a test moves it, for what expires (connectors.recent)."""

from __future__ import annotations


class ManualClock:
    """Called like time.monotonic; `now` is set or advanced by the test."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
