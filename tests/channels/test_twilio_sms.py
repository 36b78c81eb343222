"""The Twilio channel: the real SDK against a local server that answers like Twilio."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from channel_support import sms
from provider_servers import MESSAGING_SERVICE_SID, TWILIO_SID, TWILIO_TOKEN, TwilioServer

from channels.base import PermanentSendError, TransientSendError
from channels.twilio_sms import TwilioSmsChannel

pytest_plugins = ["provider_fixtures"]


def test_message_reaches_twilio_with_the_fields_twilio_documents(twilio, twilio_server):
    result = twilio.send(sms(to="+8613800138000", body="新人券已到账，回T退订"))

    [request] = twilio_server.messages
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    expected_auth = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected_auth}"
    assert request.body == {
        "To": "+8613800138000",
        "From": "+15005550006",
        "Body": "新人券已到账，回T退订",
        "StatusCallback": "https://hooks.example.com/twilio/status",
        "ValidityPeriod": "3600",
    }
    assert result.provider == "twilio"
    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_message_id)


def test_messaging_service_picks_the_sender(twilio_server):
    channel = TwilioSmsChannel(
        TWILIO_SID,
        TWILIO_TOKEN,
        messaging_service_sid=MESSAGING_SERVICE_SID,
        base_url=twilio_server.url,
    )
    channel.send(sms())

    [request] = twilio_server.messages
    assert request.body["MessagingServiceSid"] == MESSAGING_SERVICE_SID
    assert "From" not in request.body
    assert "StatusCallback" not in request.body and "ValidityPeriod" not in request.body


def test_a_sender_is_required():
    with pytest.raises(ValueError, match="from_number or messaging_service_sid"):
        TwilioSmsChannel(TWILIO_SID, TWILIO_TOKEN)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (21211, "invalid_number"),
        (21610, "opted_out"),
        (21408, "unreachable"),
        (21612, "unreachable"),
        (21602, "rejected"),
    ],
)
def test_recipient_errors_are_permanent_with_their_reason(twilio, twilio_server, code, reason):
    twilio_server.fail_next(400, code=code)

    with pytest.raises(PermanentSendError) as caught:
        twilio.send(sms())

    assert caught.value.reason == reason
    assert str(code) in str(caught.value)


def test_error_details_never_carry_the_phone_number(twilio, twilio_server):
    twilio_server.fail_next(
        400, code=21211, message="The 'To' number +8613800138000 is not a valid phone number."
    )

    with pytest.raises(PermanentSendError) as caught:
        twilio.send(sms(to="+8613800138000"))

    assert "13800138000" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_wrong_credentials_are_a_permanent_provider_auth_error(twilio_server):
    channel = TwilioSmsChannel(
        TWILIO_SID, "wrong-token", from_number="+15005550006", base_url=twilio_server.url
    )

    with pytest.raises(PermanentSendError) as caught:
        channel.send(sms())

    assert caught.value.reason == "provider_auth"
    assert "20003" in str(caught.value)


def test_rate_limit_is_transient_and_carries_retry_after(twilio, twilio_server):
    twilio_server.fail_next(429, code=20429, retry_after=7)

    with pytest.raises(TransientSendError) as caught:
        twilio.send(sms())

    assert caught.value.retry_after == 7


def test_rate_limit_without_retry_after_leaves_the_delay_to_the_retry_policy(twilio, twilio_server):
    twilio_server.fail_next(429, code=20429)

    with pytest.raises(TransientSendError) as caught:
        twilio.send(sms())

    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient_and_the_next_attempt_succeeds(twilio, twilio_server, status):
    twilio_server.fail_next(status, code=status)

    with pytest.raises(TransientSendError):
        twilio.send(sms())
    result = twilio.send(sms())

    assert result.provider_message_id.startswith("SM")
    assert len(twilio_server.messages) == 2


def test_timeout_is_transient(twilio_server):
    channel = TwilioSmsChannel(
        TWILIO_SID,
        TWILIO_TOKEN,
        from_number="+15005550006",
        base_url=twilio_server.url,
        timeout=0.2,
    )
    twilio_server.stall_next(0.6)

    with pytest.raises(TransientSendError, match="unreachable"):
        channel.send(sms())


def test_connection_refused_is_transient():
    server = TwilioServer(TWILIO_SID, TWILIO_TOKEN)
    url = server.url
    server.stop()  # the port is closed: nothing listens there
    channel = TwilioSmsChannel(
        TWILIO_SID, TWILIO_TOKEN, from_number="+15005550006", base_url=url, timeout=1
    )

    with pytest.raises(TransientSendError):
        channel.send(sms())


# --- finding the message an earlier attempt created ------------------------------------------


def test_find_sent_adopts_the_message_an_earlier_attempt_created(twilio, twilio_server):
    attempt_began = datetime.now(UTC)
    first = twilio.send(sms(to="+8613800138000", body="新人券已到账，回T退订"))
    twilio.send(sms(to="+8613800138000", body="另一条消息"))  # newer, another text
    twilio.send(sms(to="+8613900139000", body="新人券已到账，回T退订"))  # another number

    found = twilio.find_sent(
        sms(to="+8613800138000", body="新人券已到账，回T退订"), since=attempt_began
    )

    assert found == first
    [listed] = twilio_server.lists
    assert listed.query == {"To": "+8613800138000", "PageSize": "20"}
    assert len(twilio_server.messages) == 3  # looking sent nothing


def test_find_sent_ignores_older_messages_and_other_senders(twilio, twilio_server):
    twilio.send(sms(to="+8613800138000", body="新人券已到账，回T退订"))
    other_sender = TwilioSmsChannel(
        TWILIO_SID,
        TWILIO_TOKEN,
        messaging_service_sid=MESSAGING_SERVICE_SID,
        base_url=twilio_server.url,
    )
    message = sms(to="+8613800138000", body="新人券已到账，回T退订")

    # Sent by this sender, but long before this attempt began: another send of the text.
    assert twilio.find_sent(message, since=datetime.now(UTC) + timedelta(hours=1)) is None
    # Sent just now, but by another sender (a Messaging Service).
    assert other_sender.find_sent(message, since=datetime.now(UTC)) is None


def test_find_sent_is_transient_when_twilio_cannot_answer(twilio, twilio_server):
    twilio_server.fail_next(503, code=20500)

    with pytest.raises(TransientSendError):
        twilio.find_sent(sms(), since=datetime.now(UTC))
