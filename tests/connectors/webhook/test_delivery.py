"""What an answer of a receiver means for its event (connectors.webhook.delivery)."""

from __future__ import annotations

import base64

import pytest

from connectors.webhook.delivery import Outcome, Receiver, classify, parse_retry_after
from connectors.webhook.settings import WebhookSettings


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (200, None, Outcome(True, False)),
        (204, None, Outcome(True, False)),
        (500, None, Outcome(False, True, None, "HTTP 500")),
        (503, "7", Outcome(False, True, 7.0, "HTTP 503")),
        (429, "3", Outcome(False, True, 3.0, "HTTP 429")),
        (408, None, Outcome(False, True, None, "HTTP 408")),
        (502, "9", Outcome(False, True, None, "HTTP 502")),  # Retry-After only for 429/503
        (400, None, Outcome(False, False, None, "HTTP 400")),
        (404, None, Outcome(False, False, None, "HTTP 404")),
        (410, None, Outcome(False, False, None, "HTTP 410")),
        (301, None, Outcome(False, False, None, "HTTP 301")),
    ],
)
def test_answers_deliver_retry_or_fail_at_once(
    status: int, retry_after: str | None, expected: Outcome
) -> None:
    assert classify(status, retry_after) == expected


def test_retry_after_as_seconds_or_an_http_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    later = parse_retry_after("Wed, 21 Oct 2099 07:28:00 GMT")
    assert later is not None
    assert later > 3600


def test_delays_grow_exponentially_with_jitter_up_to_the_maximum() -> None:
    settings = WebhookSettings(
        url="http://127.0.0.1:9/x", secret_env="S", retry_initial=1.0, retry_max=60.0
    )
    receiver = Receiver("hr", settings, base64.b64decode(base64.b64encode(b"k" * 32)))
    first = [receiver.delay(1) for _ in range(20)]
    fifth = [receiver.delay(5) for _ in range(20)]
    assert all(1.0 <= delay <= 3.0 for delay in first)
    assert all(16.0 <= delay <= 60.0 for delay in fifth)
    assert len(set(first)) > 1  # jittered: receivers are not hit in lockstep
    assert max(receiver.delay(30) for _ in range(5)) <= 60.0
