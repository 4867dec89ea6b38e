"""Standard Webhooks signatures, as any receiver's library checks them."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from connectors.webhook.signing import secret_key, signed_headers, verify

KEY = b"k" * 32
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body() -> None:
    headers = signed_headers(KEY, "msg_1", b'{"a":1}', now=1_700_000_000)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == "1700000000"
    expected = hmac.new(KEY, b'msg_1.1700000000.{"a":1}', hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()


def test_a_receiver_accepts_what_was_signed_and_nothing_else() -> None:
    body = b'{"type":"user.created"}'
    headers = signed_headers(secret_key(SECRET), "msg_1", body, now=1_700_000_000)
    assert verify(KEY, headers, body, now=1_700_000_100)
    assert not verify(KEY, headers, body + b" ", now=1_700_000_100)  # tampered body
    assert not verify(b"x" * 32, headers, body, now=1_700_000_100)  # another secret
    assert not verify(KEY, {**headers, "webhook-id": "msg_2"}, body, now=1_700_000_100)
    assert not verify(KEY, headers, body, now=1_700_000_000 + 301)  # replayed too late
    assert not verify(KEY, {"webhook-id": "msg_1"}, body)
    # Several signatures may be sent during a key rotation: one match is enough.
    rotated = {**headers, "webhook-signature": "v1,bm90IGl0 " + headers["webhook-signature"]}
    assert verify(KEY, rotated, body, now=1_700_000_100)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("k" * 32, "must start with whsec_"),
        ("whsec_not base64!", "is not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "at least 24 bytes"),
    ],
)
def test_a_malformed_secret_is_named(secret: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        secret_key(secret)
