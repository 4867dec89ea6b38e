"""A server or program that tests need and this machine lacks: their tests are skipped
here, and fail when CI=true, since CI must run every backend (never a silent skip)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(what: str, remedy: str | None = None) -> NoReturn:
    """Skip the test, saying what is missing (and `remedy`, how to have it), or fail it
    when CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {what}: CI must run it")
    pytest.skip(f"{what}: {remedy}, or set CI=true to make this a failure" if remedy else what)


def unavailable(problem: str | None) -> None:
    """`missing(problem)` when there is one (a `*_available()` check's answer)."""
    if problem is not None:
        missing(problem)
