"""Bearer tokens: from the environment or as digests, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from types import SimpleNamespace

import pytest

from bridge import auth
from bridge.auth import TokenVerifier, new_token, token_digest
from bridge.config import AuthSettings, ConfigError, TokenSettings


def settings(*tokens: TokenSettings) -> AuthSettings:
    return AuthSettings(tokens=list(tokens))


def test_env_token() -> None:
    verifier = TokenVerifier.from_settings(
        settings(TokenSettings(env="SCIM_BRIDGE_TOKEN")),
        {"SCIM_BRIDGE_TOKEN": "s3cret-token-0123"},
        "config.toml",
    )
    assert verifier.verify("s3cret-token-0123")
    assert not verifier.verify("s3cret-token-0123 ")
    assert not verifier.verify("S3CRET-TOKEN-0123")
    assert not verifier.verify("")
    assert not verifier.verify("\udcff\udcfe")  # header bytes that are not UTF-8


def test_an_env_token_with_a_trailing_newline_is_the_token() -> None:
    verifier = TokenVerifier.from_settings(
        settings(TokenSettings(env="T")), {"T": "s3cret-token-0123\n"}, "config.toml"
    )
    assert verifier.verify("s3cret-token-0123")


def test_sha256_token() -> None:
    digest = hashlib.sha256(b"another-token").hexdigest()
    verifier = TokenVerifier.from_settings(
        settings(TokenSettings(sha256=digest.upper())), {}, "config.toml"
    )
    assert verifier.verify("another-token")
    assert not verifier.verify(digest)


def test_several_tokens_each_accepted() -> None:
    verifier = TokenVerifier.from_settings(
        settings(
            TokenSettings(env="FIRST"),
            TokenSettings(sha256=token_digest("second")),
            TokenSettings(env="THIRD"),
        ),
        {"FIRST": "first-token-0123456", "THIRD": "third-token-0123456"},
        "config.toml",
    )
    assert [
        verifier.verify(each)
        for each in ("first-token-0123456", "second", "third-token-0123456", "fourth")
    ] == [
        True,
        True,
        True,
        False,
    ]


def test_missing_and_empty_env_vars_are_all_reported() -> None:
    with pytest.raises(ConfigError) as raised:
        TokenVerifier.from_settings(
            settings(
                TokenSettings(env="SCIM_BRIDGE_TOKEN"),
                TokenSettings(sha256=token_digest("fine")),
                TokenSettings(env="EMPTY_TOKEN"),
            ),
            {"EMPTY_TOKEN": ""},
            "/etc/scim-bridge.toml",
        )
    assert raised.value.problems == [
        "/etc/scim-bridge.toml: auth.tokens[0].env: "
        "environment variable SCIM_BRIDGE_TOKEN is not set",
        "/etc/scim-bridge.toml: auth.tokens[2].env: environment variable EMPTY_TOKEN is empty",
    ]


def test_every_digest_is_compared_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    tokens = ["one", "two", "three"]
    verifier = TokenVerifier.from_settings(
        settings(*(TokenSettings(sha256=token_digest(each)) for each in tokens)), {}, "c.toml"
    )
    monkeypatch.setattr(auth, "hmac", SimpleNamespace(compare_digest=compare_digest))
    assert verifier.verify("one")
    expected = token_digest("one").encode()
    assert compared == [(expected, token_digest(each).encode()) for each in tokens]


def test_only_digests_are_kept() -> None:
    verifier = TokenVerifier.from_settings(
        settings(TokenSettings(env="TOKEN")), {"TOKEN": "plain-secret-value"}, "c.toml"
    )
    kept = repr(vars(verifier))
    assert "plain-secret-value" not in kept
    assert token_digest("plain-secret-value") in kept


def test_new_token_is_fresh_and_url_safe() -> None:
    tokens = {new_token() for _ in range(20)}
    assert len(tokens) == 20
    for token in tokens:
        assert len(token) == 43  # 32 random bytes in unpadded base64url
        assert token.replace("-", "").replace("_", "").isalnum()


def test_token_digest_is_sha256_hex() -> None:
    assert token_digest("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
