"""Where an event is in its delivery: a module of its own, which the CLI's argument parser
reads without loading the outbox's SQLAlchemy machinery."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
