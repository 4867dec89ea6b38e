"""Bearer tokens (RFC 6750; RFC 7644 §2 leaves the scheme to the service).

Only SHA-256 digests of the configured tokens are kept in memory. A presented token is
hashed and compared with every digest in constant time, so neither the comparison nor
the position of the matching token leaks through timing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

from bridge.config import MIN_TOKEN_LENGTH, AuthSettings, ConfigError, unset_variable


def new_token() -> str:
    """A fresh token with 256 bits of randomness."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The SHA-256 hex digest that `sha256 =` in `[[auth.tokens]]` expects."""
    return hashlib.sha256(token.encode()).hexdigest()


def _slip(token: str) -> str | None:
    """What makes `token` one no client can present, if anything: never the token itself.

    A client sends `Authorization: Bearer <token>`, the token being RFC 6750's b64token
    (printable ASCII without spaces): anything else is a paste gone wrong, never matched.
    """
    if token[:7].lower() == "bearer ":
        return "starts with 'Bearer ': give the token alone (clients send 'Bearer ' before it)"
    if any(char.isspace() for char in token):
        return "holds white space, which cannot follow 'Bearer ' in an Authorization header"
    if not (token.isascii() and token.isprintable()):
        return (
            "holds characters other than printable ASCII, which an Authorization header "
            "does not carry"
        )
    return None


class TokenVerifier:
    """Decides whether a presented bearer token is one of the configured tokens."""

    def __init__(self, digests: Iterable[str]) -> None:
        self._digests = tuple(digests)

    @classmethod
    def from_settings(
        cls, auth: AuthSettings, environ: Mapping[str, str], source: str
    ) -> TokenVerifier:
        """Resolve every configured token; ConfigError lists each one that cannot be used."""
        digests: list[str] = []
        problems: list[str] = []
        for index, token in enumerate(auth.tokens):
            if token.env is not None:
                key = f"{source}: auth.tokens[{index}].env"
                value = environ.get(token.env)
                if value is None:
                    problems.append(f"{key}: {unset_variable(token.env)}")
                elif not value.strip():
                    problems.append(f"{key}: environment variable {token.env} is empty")
                elif slip := _slip(value.strip()):
                    problems.append(f"{key}: the token in {token.env} {slip}")
                elif len(value.strip()) < MIN_TOKEN_LENGTH:  # too short to resist guessing
                    problems.append(
                        f"{key}: the token in {token.env} is shorter than {MIN_TOKEN_LENGTH} "
                        "characters (scim-bridge token new makes one)"
                    )
                else:
                    # As a presented token is (a file's trailing newline is no part of it).
                    digests.append(token_digest(value.strip()))
            elif token.sha256 is not None:
                digests.append(token.sha256)
        if problems:
            raise ConfigError(problems)
        return cls(digests)

    def verify(self, presented: str) -> bool:
        """Whether `presented` is a configured token; takes the same time whichever matches.

        aiohttp reads header bytes that are not UTF-8 as surrogates; such a token is no
        configured token (RFC 6750's b64token is ASCII), never an error.
        """
        try:
            digest = token_digest(presented).encode()
        except UnicodeEncodeError:
            return False
        matched = False
        for expected in self._digests:
            # `|` rather than `or`: every digest is compared, even after a match.
            matched |= hmac.compare_digest(digest, expected.encode())
        return matched
