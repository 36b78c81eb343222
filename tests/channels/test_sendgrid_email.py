"""The SendGrid channel: the real SDK against a local server that answers like Mail Send v3."""

from __future__ import annotations

import time

import httpx
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
    # Our key rides in the personalization: the spec's top-level custom_args is a string.
    # SendGrid echoes personalization custom args as top-level fields of each event.
    assert mail["personalizations"] == [
        {
            "to": [{"email": "u1@example.com"}],
            "custom_args": {MESSAGE_KEY_ARG: "run-1/day6_email/1"},
        }
    ]
    assert "custom_args" not in mail
    assert mail["from"] == {"email": "hello@shop.example.com", "name": "Shop"}
    assert mail["reply_to"] == {"email": "support@shop.example.com"}
    assert mail["subject"] == "最后机会：你的¥20新人券即将到期"
    assert mail["content"] == [
        {"type": "text/plain", "value": "券码 ABC123"},
        {"type": "text/html", "value": "<p>券码 <b>ABC123</b></p>"},
    ]
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
    sendgrid_server.fail_next(400, code="content.0.value", message="The content value must be")

    with pytest.raises(PermanentSendError) as caught:
        sendgrid.send(email())

    assert caught.value.reason == "rejected"
    assert "The content value must be" in str(caught.value)
    assert "field content.0.value" in str(caught.value)


@pytest.mark.parametrize(
    "message",
    [email(subject=None), email(subject=" \n"), email(body="", html=None)],
    ids=["no subject", "blank subject", "no body"],
)
def test_mail_without_subject_or_body_never_reaches_sendgrid(sendgrid, sendgrid_server, message):
    with pytest.raises(PermanentSendError) as caught:
        sendgrid.send(message)

    assert caught.value.reason == "invalid_argument"
    assert sendgrid_server.mails == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"custom_args": {MESSAGE_KEY_ARG: "k"}}, "custom_args"),
        ({"personalizations": [{"to": [{"name": "no address"}]}]}, "personalizations.0.to.0"),
        ({"categories": ["same", "same"]}, "categories"),
        ({"subject": ""}, "subject"),
    ],
)
def test_the_local_server_refuses_what_the_official_spec_refuses(sendgrid_server, change, field):
    body = {
        "personalizations": [{"to": [{"email": "u1@example.com"}]}],
        "from": {"email": "hello@shop.example.com"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "v"}],
    } | change

    answer = httpx.post(
        f"{sendgrid_server.url}/v3/mail/send",
        json=body,
        headers={"Authorization": f"Bearer {SENDGRID_KEY}"},
    )

    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert error["field"] == field and error["message"]
    assert sendgrid_server.message_ids == []


def test_accepted_without_a_message_id_is_sent_not_retried(sendgrid, sendgrid_server):
    # A 202 means SendGrid took the mail: retrying would send it twice. The ledger keeps our
    # key, and the Event Webhook's custom args find the row by it.
    sendgrid_server.omit_message_id_next()

    result = sendgrid.send(email(key="run-2/day6_email/1"))

    assert result.provider == "sendgrid"
    assert result.provider_message_id is None
    [request] = sendgrid_server.mails
    [personalization] = request.body["personalizations"]
    assert personalization["custom_args"] == {MESSAGE_KEY_ARG: "run-2/day6_email/1"}


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
