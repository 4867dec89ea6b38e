"""The valid name nearest to one an admin misspelt, for the error that refuses it.

Configuration, mappings and the backend's own names (a table's columns, a directory's
attribute types) are written by hand; a slip is refused before serving, and the message
names the nearest valid spelling, so that the fix is read off it rather than looked up.
Near means difflib's similarity ratio of at least 0.6 (its own default: `evn` is near
`env`), 0.75 for the backend's names; compared without case.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

NEAR = 0.6
"""difflib's similarity ratio from which a valid name is offered as the one meant."""

BACKEND_NEAR = 0.75
"""The same for the backend's own names: a table's columns and a directory's attribute
types are many and alike, and a loose match would mislead (`changed_at` is not
`created_at`, `member_id` is not `user_id`)."""


def closest(name: str, valid: Iterable[str], near: float = NEAR) -> str | None:
    """The valid name nearest to `name`, or None when none is near."""
    by_folded = {each.lower(): each for each in valid}
    found = difflib.get_close_matches(name.lower(), by_folded, n=1, cutoff=near)
    return by_folded[found[0]] if found else None


def did_you_mean(name: str, valid: Iterable[str], near: float = NEAR) -> str:
    """` (did you mean 'x'?)` for the nearest valid name, or nothing."""
    nearest = closest(name, valid, near)
    return f" (did you mean '{nearest}'?)" if nearest is not None else ""
