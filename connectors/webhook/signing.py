"""Standard Webhooks signatures (https://www.standardwebhooks.com, "symmetric" scheme).

A delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
`webhook-signature`: `v1,` followed by the base64 HMAC-SHA256 of `id.timestamp.body`,
keyed with the shared secret. The secret is written `whsec_<base64 key>`, as the
Standard Webhooks libraries of every language expect it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

PREFIX = "whsec_"
TOLERANCE = 300
"""Seconds a receiver accepts between the timestamp and its own clock (replay window)."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret; ValueError saying what is wrong."""
    if not secret.startswith(PREFIX):
        raise ValueError(f"must start with {PREFIX} followed by a base64 key")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {PREFIX} is not base64") from None
    if len(key) < 24:
        raise ValueError("the key must be at least 24 bytes (32 recommended)")
    return key


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    key: bytes, message_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, message_id, timestamp, body),
    }


def verify(key: bytes, headers: Mapping[str, str], body: bytes, now: float | None = None) -> bool:
    """What a receiver checks: a fresh timestamp and one matching `v1` signature.

    `headers` must look names up case-insensitively (aiohttp's and most frameworks' do).
    """
    try:
        message_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        sent = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE:
        return False
    expected = signature(key, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in sent)
