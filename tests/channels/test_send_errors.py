"""What every channel shares: reading Retry-After and keeping contact details out of errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from channel_support import email, push, sms

from channels.base import MAX_RETRY_AFTER, TransientSendError, parse_retry_after, scrub

pytest_plugins = ["provider_fixtures"]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), (" 1.5 ", 1.5), ("0", 0.0), ("-3", 0.0), (None, None), ("", None)],
)
def test_retry_after_in_seconds(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date():
    when = datetime.now(UTC) + timedelta(seconds=90)

    delay = parse_retry_after(format_datetime(when, usegmt=True))

    assert delay is not None and 85 <= delay <= 90


@pytest.mark.parametrize("header", ["soon", "nan", "inf"])
def test_unreadable_retry_after_is_ignored(header):
    assert parse_retry_after(header) is None


def test_transient_error_says_when_to_retry():
    assert str(TransientSendError("twilio 429", retry_after=7)) == "twilio 429 (retry after 7s)"
    assert TransientSendError("fcm 503").retry_after is None


def test_scrub_removes_phone_numbers_and_addresses_but_keeps_error_codes():
    text = "21211: The 'To' number +86 138-0013-8000 is invalid; notify ops@shop.example.com"

    assert scrub(text) == "21211: The 'To' number <number> is invalid; notify <email>"


# --- Retry-After past any sensible wait, from each provider's local server ------------------

FAR_FUTURE = "Thu, 01 Jan 2099 00:00:00 GMT"


def _send_through(provider: str, request: pytest.FixtureRequest) -> None:
    message = {"twilio": sms(), "sendgrid": email(), "fcm": push()}[provider]
    request.getfixturevalue(provider).send(message)


@pytest.mark.parametrize("provider", ["twilio", "sendgrid", "fcm"])
@pytest.mark.parametrize("retry_after", [FAR_FUTURE, "99999999999", "1e300"])
def test_a_huge_retry_after_is_capped(provider, retry_after, request):
    server = request.getfixturevalue(f"{provider}_server")
    server.fail_next(429, retry_after=retry_after)

    with pytest.raises(TransientSendError) as caught:
        _send_through(provider, request)

    assert caught.value.retry_after == MAX_RETRY_AFTER


@pytest.mark.parametrize("provider", ["twilio", "sendgrid", "fcm"])
def test_a_retry_after_within_the_cap_is_kept(provider, request):
    request.getfixturevalue(f"{provider}_server").fail_next(503, retry_after=90)

    with pytest.raises(TransientSendError) as caught:
        _send_through(provider, request)

    assert caught.value.retry_after == 90


def test_the_cap_is_ten_minutes():
    assert MAX_RETRY_AFTER == 600
    assert TransientSendError("x", retry_after=10**12).retry_after == 600
