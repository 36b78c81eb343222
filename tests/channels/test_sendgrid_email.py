"""The SendGrid channel: the real SDK against a local server that answers like Mail Send v3."""

from __future__ import annotations

import time

import pytest
from channel_support import email
from provider_servers import SENDGRID_KEY

from channels.base import PermanentSendError, TransientSendError
from channels.sendgrid_email import MESSAGE_KEY_ARG, SendGridEmailChannel

pytest_plugins = ["provider_fixtures"]


def test_mail_reaches_sendgrid_as_the_mail_send_api_documents(sendgrid, sendgrid_server):
    message = email(
        key="run-1/day6_email/1",
        unsubscribe_url="https://shop.example.com/u/41?t=abc",
        tags=("new_user_coupon", "new_user_last_chance_email"),
    )

    result = sendgrid.send(message)

    [request] = sendgrid_server.mails
    assert request.headers["authorization"] == f"Bearer {SENDGRID_KEY}"
    assert request.headers["content-type"] == "application/json"
    mail = request.body
    assert mail["personalizations"] == [{"to": [{"email": "u1@example.com"}]}]
    assert mail["from"] == {"email": "hello@shop.example.com", "name": "Shop"}
    assert mail["reply_to"] == {"email": "support@shop.example.com"}
    assert mail["subject"] == "最后机会：你的¥20新人券即将到期"
    assert mail["content"] == [
        {"type": "text/plain", "value": "券码 ABC123"},
        {"type": "text/html", "value": "<p>券码 <b>ABC123</b></p>"},
    ]
    assert mail["custom_args"] == {MESSAGE_KEY_ARG: "run-1/day6_email/1"}
    assert mail["categories"] == ["lifecycle", "new_user_coupon", "new_user_last_chance_email"]
    assert mail["asm"] == {"group_id": 4242}
    assert mail["headers"] == {
        "List-Unsubscribe": "<https://shop.example.com/u/41?t=abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert result.provider == "sendgrid"
    assert result.provider_message_id == sendgrid_server.message_ids[-1]


def test_unsubscribe_url_can_come_from_the_channel(sendgrid_server):
    channel = SendGridEmailChannel(
        SENDGRID_KEY,
        from_email="hello@shop.example.com",
        host=sendgrid_server.url,
        unsubscribe_url_for=lambda m: f"https://shop.example.com/u/{m.key}",
    )

    channel.send(email(key="k9"))

    mail = sendgrid_server.mails[-1].body
    assert mail["headers"]["List-Unsubscribe"] == "<https://shop.example.com/u/k9>"
    assert mail["from"] == {"email": "hello@shop.example.com"}
    assert "asm" not in mail and "reply_to" not in mail and "categories" not in mail


def test_no_unsubscribe_url_means_no_list_unsubscribe_headers(sendgrid, sendgrid_server):
    sendgrid.send(email())

    assert "headers" not in sendgrid_server.mails[-1].body


def test_text_only_mail(sendgrid, sendgrid_server):
    sendgrid.send(email(html=None))

    assert sendgrid_server.mails[-1].body["content"] == [
        {"type": "text/plain", "value": "券码 ABC123"}
    ]


def test_bad_request_is_permanent_with_sendgrid_s_first_error(sendgrid, sendgrid_server):
    with pytest.raises(PermanentSendError) as caught:
        sendgrid.send(email(subject=None))

    assert caught.value.reason == "rejected"
    assert "The subject is required" in str(caught.value)
    assert "field subject" in str(caught.value)


def test_bad_request_detail_never_carries_the_address(sendgrid, sendgrid_server):
    sendgrid_server.fail_next(
        400, code="personalizations.0.to.0.email", message="Invalid email u1@example.com"
    )

    with pytest.raises(PermanentSendError) as caught:
        sendgrid.send(email())

    assert "u1@example.com" not in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_is_a_permanent_provider_auth_error(sendgrid, sendgrid_server, status):
    sendgrid_server.fail_next(status, message="access forbidden")

    with pytest.raises(PermanentSendError) as caught:
        sendgrid.send(email())

    assert caught.value.reason == "provider_auth"


def test_wrong_api_key_is_refused_by_the_server(sendgrid_server):
    channel = SendGridEmailChannel(
        "SG.wrong", from_email="hello@shop.example.com", host=sendgrid_server.url
    )

    with pytest.raises(PermanentSendError) as caught:
        channel.send(email())

    assert caught.value.reason == "provider_auth"
    assert "authorization grant is invalid" in str(caught.value)


def test_rate_limit_is_transient_with_retry_after(sendgrid, sendgrid_server):
    sendgrid_server.fail_next(429, message="too many requests", retry_after=12)

    with pytest.raises(TransientSendError) as caught:
        sendgrid.send(email())

    assert caught.value.retry_after == 12


def test_rate_limit_reset_header_gives_the_delay(sendgrid, sendgrid_server):
    reset = int(time.time()) + 30
    sendgrid_server.fail_next(429, headers={"X-RateLimit-Reset": str(reset)})

    with pytest.raises(TransientSendError) as caught:
        sendgrid.send(email())

    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 30


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(sendgrid, sendgrid_server, status):
    sendgrid_server.fail_next(status, message="internal server error")

    with pytest.raises(TransientSendError) as caught:
        sendgrid.send(email())

    assert caught.value.retry_after is None
    assert sendgrid.send(email()).provider_message_id == sendgrid_server.message_ids[-1]


def test_timeout_is_transient(sendgrid_server):
    channel = SendGridEmailChannel(
        SENDGRID_KEY, from_email="hello@shop.example.com", host=sendgrid_server.url, timeout=0.2
    )
    sendgrid_server.stall_next(0.6)

    with pytest.raises(TransientSendError, match="unreachable"):
        channel.send(email())
