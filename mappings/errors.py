"""The three errors a mapping raises: one for the operator, two for the client."""

from __future__ import annotations


class MappingError(Exception):
    """A mapping file is invalid; `problems` lists every problem found, one line each.

    Each line reads `<file>: <key path>: <what is wrong>`, so that an operator can fix
    the whole file in one pass instead of one error per start attempt.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class UntranslatableFilter(Exception):
    """A SCIM filter names an attribute, or an operator on it, the backend cannot evaluate.

    The message is safe for a client (RFC 7644 §3.12 invalidFilter) and names the
    attribute as the client wrote it. Terms are never dropped instead: dropping one side
    of an `and` would silently widen the result.
    """


class TranslationError(Exception):
    """A value cannot be translated between SCIM and the backend; the message is client-safe."""

    def __init__(self, message: str, *, attribute: str) -> None:
        super().__init__(message)
        self.attribute = attribute
