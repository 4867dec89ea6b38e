"""A journal that keeps what a connector tells it, and what a deletion must have told."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from connectors.base import Change, Kind


class RecordingJournal:
    """The connectors' Journal protocol, keeping every change it is told of."""

    def __init__(self) -> None:
        self.changes: list[Change] = []

    async def record(self, changes: list[Change], transaction: Any | None) -> None:
        self.changes += changes

    async def ready(self, kinds: Collection[Kind]) -> None:
        """Always: the changes are kept in memory."""


def assert_deletion_told(
    changes: list[Change], *, deleted: str, report: str, group: str, manager: str
) -> None:
    """A deleted user `deleted`, who managed `report` (field `manager`) and was in `group`:
    its removal, its report's manager emptied and its group's loss, each a change."""
    told = {(change.kind, change.id): change for change in changes}
    assert sorted(told) == sorted(
        [(Kind.USERS, deleted), (Kind.USERS, report), (Kind.GROUPS, group)]
    )
    assert told[(Kind.USERS, deleted)].after is None
    reported = told[(Kind.USERS, report)]
    assert reported.before is not None
    assert reported.after is not None
    assert reported.before.values[manager] == deleted
    assert manager not in reported.after.values
    assert told[(Kind.GROUPS, group)].members_removed == {deleted}
