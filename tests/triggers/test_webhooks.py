"""Provider webhooks as Twilio and SendGrid call them: real signatures, real databases."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from api.app import create_app
from channels.base import OutboundMessage, SendResult
from channels.twilio_sms import TwilioSmsChannel
from config import Settings
from delivery_support import deliver, delivery_activities
from journey_support import add_user
from message_templates.render import TemplateRenderer
from store.db import transaction
from store.models import Consent, Enrollment, Message, ProviderEvent
from triggers.ingest import NullRouter
from triggers.webhooks.twilio_sms import keyword
from workflows.contracts import DeliverInput, EventSignal
from workflows.ids import journey_workflow_id

pytest_plugins = ["provider_fixtures"]

PUBLIC = "http://127.0.0.1:8000"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
NOW = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
PHONE = "+8613800138000"


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    """The key pair SendGrid would hold; its public half goes into the settings."""
    return ec.generate_private_key(ec.SECP256R1())


def public_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    """The public key as SendGrid's settings page shows it: base64 of the DER key."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def make_client(db: Any, clock: Clock, **overrides: Any) -> TestClient:
    values: dict[str, Any] = {
        "environment": "development",
        "public_base_url": PUBLIC,
        "twilio_auth_token": TWILIO_TOKEN,
    }
    settings = Settings(**(values | overrides))
    app = create_app(
        settings, session_factory=db.factory, router=NullRouter(db.factory), clock=clock
    )
    return TestClient(app)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(db: Any, clock: Clock, sendgrid_key: ec.EllipticCurvePrivateKey) -> Iterator[TestClient]:
    with make_client(
        db, clock, sendgrid_webhook_public_key=public_key_text(sendgrid_key)
    ) as test_client:
        yield test_client


# --- helpers ---------------------------------------------------------------------------------


def twilio_post(
    client: TestClient,
    path: str,
    params: dict[str, str],
    *,
    token: str = TWILIO_TOKEN,
    signed_url: str | None = None,
    signature: str | None = None,
) -> Any:
    """POST a form as Twilio does, signed over the public URL unless told otherwise."""
    if signature is None:
        signature = RequestValidator(token).compute_signature(signed_url or PUBLIC + path, params)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return client.post(path, data=params, headers=headers)


def status_callback(client: TestClient, sid: str, status: str, **extra: str) -> Any:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": "AC0000",
        "To": PHONE,
        **extra,
    }
    return twilio_post(client, "/webhooks/twilio/status", params)


def inbound(client: TestClient, body: str, *, sid: str = "SMin1", sender: str = PHONE) -> Any:
    params = {"MessageSid": sid, "From": sender, "To": "+15005550006", "Body": body}
    return twilio_post(client, "/webhooks/twilio/inbound", params)


def sendgrid_post(
    client: TestClient,
    events: list[dict[str, Any]],
    *,
    key: ec.EllipticCurvePrivateKey,
    signed_at: datetime = NOW,
    body: bytes | None = None,
) -> Any:
    """POST events as SendGrid does: ECDSA P-256/SHA-256 over timestamp + raw body."""
    raw = json.dumps(events).encode()
    timestamp = str(int(signed_at.timestamp()))
    signature = key.sign(timestamp.encode() + raw, ec.ECDSA(hashes.SHA256()))
    return client.post(
        "/webhooks/sendgrid",
        content=raw if body is None else body,
        headers={
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )


def sg_event(kind: str, key: str | None, event_id: str, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "email": "u1@example.com",
        "timestamp": int(NOW.timestamp()),
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": "sgmsg1.filterdrecv-1.0",
        **fields,
    }
    if key is not None:
        event["lifecycle_key"] = key
    return event


def add_message(db: Any, user_id: str, key: str, **fields: Any) -> int:
    values: dict[str, Any] = {
        "channel": "sms",
        "template": "new_user_welcome_sms",
        "status": "sent",
        "provider": "twilio",
        "provider_message_id": f"SM{key}",
        "created_at": NOW,
        "sent_at": NOW,
    } | fields
    with transaction(db.factory) as session:
        row = Message(idempotency_key=key, user_id=user_id, **values)
        session.add(row)
        session.flush()
        return row.id


def enroll(db: Any, user_id: str) -> int:
    with transaction(db.factory) as session:
        enrollment = Enrollment(
            journey_id="new_user_coupon",
            journey_version=1,
            user_id=user_id,
            group="treatment",
            workflow_id=journey_workflow_id("new_user_coupon", user_id),
            entered_at=NOW,
        )
        session.add(enrollment)
        session.flush()
        return enrollment.id


def message(db: Any, message_id: int) -> Message:
    with db.factory() as session:
        return session.get_one(Message, message_id)


def consents(db: Any, user_id: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    with db.factory() as session:
        rows = session.scalars(select(Consent).where(Consent.user_id == user_id))
        return {(c.channel, c.topic): (c.status, c.source) for c in rows}


# --- Twilio: signatures ----------------------------------------------------------------------


def test_twilio_requests_without_a_valid_signature_are_refused(db, client):
    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1")
    params = {"MessageSid": "SMk1", "MessageStatus": "delivered"}
    path = "/webhooks/twilio/status"

    missing = twilio_post(client, path, params, signature="")
    wrong_token = twilio_post(client, path, params, token="someone-elses-token")
    wrong_url = twilio_post(client, path, params, signed_url="https://evil.example/x")
    garbage = twilio_post(client, path, params, signature="bm90IGEgc2lnbmF0dXJl")
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, params)
    tampered = client.post(
        path,
        data=params | {"MessageStatus": "failed"},
        headers={"X-Twilio-Signature": signature},
    )
    stop = twilio_post(
        client,
        "/webhooks/twilio/inbound",
        {"From": PHONE, "Body": "STOP"},
        token="someone-elses-token",
    )

    for response in (missing, wrong_token, wrong_url, garbage, tampered, stop):
        assert response.status_code == 403
    assert message(db, row).status == "sent"
    assert consents(db, "u1") == {}
    assert twilio_post(client, path, params).status_code == 200


def test_twilio_webhooks_are_refused_when_no_auth_token_is_configured(sqlite_db, clock):
    with make_client(sqlite_db, clock, twilio_auth_token=None) as test_client:
        assert inbound(test_client, "STOP").status_code == 403


# --- Twilio: status callbacks ----------------------------------------------------------------


def test_status_callbacks_move_the_ledger_forward_and_never_back(db, client, clock):
    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1")

    for status in ("queued", "sending"):
        response = status_callback(client, "SMk1", status)
        assert response.status_code == 200
        assert message(db, row).status == "sent"
    clock.now = NOW + timedelta(seconds=40)
    status_callback(client, "SMk1", "delivered")
    assert message(db, row).status == "delivered"
    clock.now = NOW + timedelta(minutes=2)
    # Callbacks can arrive out of order: "sent" after "delivered".
    late_sent = status_callback(client, "SMk1", "sent")
    late_failed = status_callback(client, "SMk1", "failed", ErrorCode="30008")

    assert late_sent.status_code == late_failed.status_code == 200
    assert late_sent.headers["content-type"].startswith("text/xml")
    assert "<Response/>" in late_sent.text
    after = message(db, row)
    assert (after.status, after.reason) == ("delivered", None)
    assert after.delivered_at == NOW + timedelta(seconds=40)
    assert after.failed_at is None


def test_undelivered_is_terminal_and_keeps_the_carriers_reason(db, client):
    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1")

    status_callback(client, "SMk1", "undelivered", ErrorCode="30003")
    status_callback(client, "SMk1", "delivered")
    status_callback(client, "SMk1", "sent")

    after = message(db, row)
    assert (after.status, after.reason) == ("undelivered", "unreachable")
    assert after.failed_at == NOW and after.delivered_at is None


def test_a_failed_callback_with_21610_unsubscribes_the_user_from_sms(db, client):
    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1")

    status_callback(client, "SMk1", "failed", ErrorCode="21610")

    assert (message(db, row).status, message(db, row).reason) == ("failed", "opted_out")
    assert consents(db, "u1") == {
        ("sms", "marketing"): ("unsubscribed", "provider_opt_out"),
        ("sms", "transactional"): ("unsubscribed", "provider_opt_out"),
    }


def test_callbacks_for_unknown_messages_are_answered_and_change_nothing(db, client):
    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1")

    assert status_callback(client, "SMsomeoneelse", "delivered").status_code == 200

    assert message(db, row).status == "sent"


def test_a_repeated_status_callback_is_recorded_once(db, client):
    add_user(db.factory, "u1", NOW)
    add_message(db, "u1", "k1")

    status_callback(client, "SMk1", "delivered")
    status_callback(client, "SMk1", "delivered")

    with db.factory() as session:
        kinds = session.scalars(
            select(ProviderEvent.kind).where(ProviderEvent.provider == "twilio")
        )
        assert list(kinds) == ["delivered"]


# --- Twilio: inbound keywords ----------------------------------------------------------------


class CallbackBeforeLedger:
    """Twilio, reached through the real SDK, calling back before ``deliver`` stores the sid.

    Twilio posts status callbacks as soon as the carrier reports, often within a second of
    accepting the message: the worker may not have recorded the sid yet.
    """

    name = "twilio"
    holds_early_statuses = TwilioSmsChannel.holds_early_statuses

    def __init__(self, db: Any, twilio: TwilioSmsChannel, client: TestClient, clock: Clock):
        self.db, self.twilio, self.client, self.clock = db, twilio, client, clock
        self.callbacks: list[tuple[str, dict[str, str]]] = []

    def send(self, message: OutboundMessage) -> SendResult:
        result = self.twilio.send(message)
        sid = str(result.provider_message_id)
        for status, extra in self.callbacks:
            self.clock.now += timedelta(seconds=1)
            assert status_callback(self.client, sid, status, **extra).status_code == 200
        with self.db.factory() as session:
            row = session.scalars(
                select(Message).where(Message.idempotency_key == message.key)
            ).one()
            assert (row.status, row.provider_message_id) == ("sending", None)
        return result


def hello_sms(db: Any, tmp_path: Any, user_id: str = "u1") -> DeliverInput:
    """A welcome SMS for ``user_id`` through ``channel``, ready for ``deliver``."""
    (tmp_path / "hello_sms.yaml").write_text(
        "channel: sms\nlocales:\n  zh-CN: {body: '欢迎'}\n", encoding="utf-8"
    )
    add_user(db.factory, user_id, NOW)
    return DeliverInput(
        idempotency_key=f"run-{user_id}/hello_sms/1",
        enrollment_id=enroll(db, user_id),
        journey_id="new_user_coupon",
        step_id="hello_sms",
        user_id=user_id,
        channel="sms",
        template="hello_sms",
        topic="marketing",
        group="treatment",
        now=NOW,
        trigger=EventSignal(message_id="m-1", event="user_signed_up", timestamp=NOW),
    )


def test_a_callback_before_the_sid_is_stored_applies_when_it_is(
    db, client, clock, tmp_path, twilio, twilio_server
):
    inp = hello_sms(db, tmp_path)
    twilio_sms = CallbackBeforeLedger(db, twilio, client, clock)
    twilio_sms.callbacks = [("sent", {}), ("delivered", {})]
    delivery = delivery_activities(
        db.factory, {"sms": twilio_sms}, renderer=TemplateRenderer(tmp_path)
    )

    assert deliver(delivery, inp).status == "sent"

    [sid] = twilio_server.sids
    [row] = ledger_rows(db, "u1")
    assert (row.status, row.provider_message_id) == ("delivered", sid)
    assert row.delivered_at == NOW + timedelta(seconds=2)  # when Twilio reported it
    # Twilio retries a callback it got no answer to; a late "sent" moves nothing back.
    status_callback(client, sid, "delivered")
    status_callback(client, sid, "sent")
    [row] = ledger_rows(db, "u1")
    assert (row.status, row.delivered_at) == ("delivered", NOW + timedelta(seconds=2))
    with db.factory() as session:
        events = session.execute(select(ProviderEvent.message_id, ProviderEvent.provider_event_id))
        assert sorted(events) == [(row.id, f"{sid}:delivered"), (row.id, f"{sid}:sent")]


def test_an_early_opt_out_failure_fails_the_message_and_unsubscribes(
    db, client, clock, tmp_path, twilio, twilio_server
):
    inp = hello_sms(db, tmp_path)
    twilio_sms = CallbackBeforeLedger(db, twilio, client, clock)
    twilio_sms.callbacks = [("failed", {"ErrorCode": "21610"})]
    delivery = delivery_activities(
        db.factory, {"sms": twilio_sms}, renderer=TemplateRenderer(tmp_path)
    )

    deliver(delivery, inp)

    [row] = ledger_rows(db, "u1")
    assert (row.status, row.reason) == ("failed", "opted_out")
    assert row.failed_at == NOW + timedelta(seconds=1)
    assert consents(db, "u1")[("sms", "marketing")] == ("unsubscribed", "provider_opt_out")


def test_a_held_callback_applies_when_twilio_retries_it_after_the_sid_is_stored(db, client):
    """The other order of the race: the sid was stored after the callback was held, by a
    send that had already looked for held callbacks; Twilio's retry applies it, once."""
    add_user(db.factory, "u1", NOW)
    assert status_callback(client, "SMk1", "delivered").status_code == 200
    row = add_message(db, "u1", "k1")  # provider_message_id SMk1, status sent
    assert message(db, row).status == "sent"

    status_callback(client, "SMk1", "delivered")
    status_callback(client, "SMk1", "delivered")

    assert (message(db, row).status, message(db, row).delivered_at) == ("delivered", NOW)
    with db.factory() as session:
        count = session.scalar(select(func.count()).select_from(ProviderEvent))
        assert count == 1


def ledger_rows(db: Any, user_id: str) -> list[Message]:
    with db.factory() as session:
        return list(session.scalars(select(Message).where(Message.user_id == user_id)))


def test_stop_unsubscribes_every_user_of_that_number_from_all_sms(db, client):
    add_user(db.factory, "u1", NOW)
    add_user(db.factory, "u2", NOW, push_token=None)  # the same phone, a second account
    add_user(db.factory, "u3", NOW, phone="+8613900139000", push_token=None)

    response = inbound(client, "  stop ")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert "<Response/>" in response.text
    for user in ("u1", "u2"):
        assert consents(db, user) == {
            ("sms", "marketing"): ("unsubscribed", "sms_keyword"),
            ("sms", "transactional"): ("unsubscribed", "sms_keyword"),
        }
    assert consents(db, "u3") == {}


def test_chinese_unsubscribe_reply_works_like_stop(db, client):
    add_user(db.factory, "u1", NOW)

    inbound(client, "退订")

    assert consents(db, "u1")[("sms", "marketing")] == ("unsubscribed", "sms_keyword")


@pytest.mark.parametrize(
    "body",
    ["STOP", "stop", "StopAll", "UNSUBSCRIBE", "cancel", "END", "quit", "REVOKE", "OPTOUT"]
    + ["退订", "TD", "td", " Td\n", "ＴＤ", "T", "退订。"],
)
def test_opt_out_keywords(body):
    assert keyword(body) == "stop"


@pytest.mark.parametrize("body", ["START", "start", " Unstop ", "YES", "yes", "Yes!"])
def test_opt_in_keywords(body):
    assert keyword(body) == "start"


@pytest.mark.parametrize("body", ["please stop", "STOP IT", "退订了吗", "HELP", "", "TDX"])
def test_other_replies_are_not_keywords(body):
    assert keyword(body) is None


def test_start_resubscribes_after_stop(db, client, clock):
    add_user(db.factory, "u1", NOW)

    inbound(client, "退订", sid="SMin1")
    clock.now += timedelta(seconds=1)  # received a second later: at the same instant STOP wins
    inbound(client, "START", sid="SMin2")

    assert consents(db, "u1") == {
        ("sms", "marketing"): ("subscribed", "sms_keyword"),
        ("sms", "transactional"): ("subscribed", "sms_keyword"),
    }


def test_a_retried_inbound_message_is_applied_once(db, client, clock):
    add_user(db.factory, "u1", NOW)

    inbound(client, "STOP", sid="SMin1")
    clock.now += timedelta(seconds=1)
    inbound(client, "START", sid="SMin2")
    clock.now += timedelta(seconds=1)
    inbound(client, "STOP", sid="SMin1")  # Twilio retrying the first request

    assert consents(db, "u1")[("sms", "marketing")] == ("subscribed", "sms_keyword")


def test_an_ordinary_reply_changes_nothing(db, client):
    add_user(db.factory, "u1", NOW)

    response = inbound(client, "What time does the sale end?")

    assert response.status_code == 200 and "<Response/>" in response.text
    assert consents(db, "u1") == {}


def test_stop_takes_effect_for_a_send_already_waiting(db, client):
    """A send deferred by quiet hours, then the user replies STOP: it is never sent."""
    add_user(db.factory, "u1", NOW)
    enrollment_id = enroll(db, "u1")
    sent: list[Any] = []

    class RecordingChannel:
        name = "recording"

        def send(self, outbound: Any) -> Any:
            sent.append(outbound)
            raise AssertionError("nothing may be sent after STOP")

    delivery = delivery_activities(
        db.factory, {"sms": RecordingChannel()}, quiet_hours="21:00-08:00"
    )
    night = datetime(2025, 5, 1, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
    inp = DeliverInput(
        idempotency_key="run-u1/welcome_sms/1",
        enrollment_id=enrollment_id,
        journey_id="new_user_coupon",
        step_id="welcome_sms",
        user_id="u1",
        channel="sms",
        template="new_user_welcome_sms",
        topic="marketing",
        group="treatment",
        now=night,
        trigger=EventSignal(message_id="m-1", event="user_signed_up", timestamp=night),
    )
    waiting = deliver(delivery, inp)
    assert (waiting.status, waiting.reason) == ("deferred", "quiet_hours")

    inbound(client, "STOP")
    assert waiting.defer_until is not None
    inp.now = waiting.defer_until
    result = deliver(delivery, inp)

    assert (result.status, result.reason) == ("skipped", "unsubscribed")
    assert message(db, result.message_id).status == "skipped"
    assert sent == []


# --- SendGrid --------------------------------------------------------------------------------


def test_sendgrid_events_need_a_fresh_valid_signature(db, client, sendgrid_key):
    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1", channel="email", provider="sendgrid")
    events = [sg_event("delivered", "k1", "e1")]
    raw = json.dumps(events).encode()

    unsigned = client.post("/webhooks/sendgrid", content=raw)
    other_key = sendgrid_post(client, events, key=ec.generate_private_key(ec.SECP256R1()))
    tampered = sendgrid_post(
        client, events, key=sendgrid_key, body=raw.replace(b"delivered", b"click")
    )
    stale = sendgrid_post(client, events, key=sendgrid_key, signed_at=NOW - timedelta(minutes=6))
    future = sendgrid_post(client, events, key=sendgrid_key, signed_at=NOW + timedelta(minutes=6))
    bad_header = client.post(
        "/webhooks/sendgrid",
        content=raw,
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": "%%% not base64 %%%",
            "X-Twilio-Email-Event-Webhook-Timestamp": str(int(NOW.timestamp())),
        },
    )

    for response in (unsigned, other_key, tampered, stale, future, bad_header):
        assert response.status_code == 403
    assert stale.json()["error"] == "Stale SendGrid timestamp."
    assert message(db, row).status == "sent"
    with db.factory() as session:
        assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 0

    recent = sendgrid_post(client, events, key=sendgrid_key, signed_at=NOW - timedelta(minutes=4))
    assert recent.status_code == 200
    assert message(db, row).status == "delivered"


def test_sendgrid_events_are_refused_when_no_key_is_configured(sqlite_db, clock, sendgrid_key):
    with make_client(sqlite_db, clock) as test_client:
        response = sendgrid_post(test_client, [sg_event("open", "k1", "e1")], key=sendgrid_key)
    assert response.status_code == 403


def test_a_malformed_verification_key_is_refused_when_the_app_is_built(sqlite_db, clock):
    with pytest.raises(ValueError, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        make_client(sqlite_db, clock, sendgrid_webhook_public_key="not a key")


def test_delivered_open_click_move_the_ledger_forward_and_never_back(db, client, sendgrid_key):
    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1", channel="email", provider="sendgrid")
    t = int(NOW.timestamp())

    batch = [
        sg_event("processed", "k1", "e0", timestamp=t - 5),
        sg_event("click", "k1", "e3", timestamp=t + 60),
        sg_event("open", "k1", "e2", timestamp=t + 30),
        sg_event("delivered", "k1", "e1", timestamp=t),
    ]
    assert sendgrid_post(client, batch, key=sendgrid_key).status_code == 200
    after = message(db, row)
    assert after.status == "clicked"
    assert (after.delivered_at, after.opened_at, after.clicked_at) == (
        NOW,
        NOW + timedelta(seconds=30),
        NOW + timedelta(seconds=60),
    )

    late = [sg_event("delivered", "k1", "e4"), sg_event("open", "k1", "e5")]
    sendgrid_post(client, late, key=sendgrid_key)
    assert message(db, row).status == "clicked"


def test_the_message_is_found_by_sendgrids_message_id_without_our_key(db, client, sendgrid_key):
    add_user(db.factory, "u1", NOW)
    row = add_message(
        db, "u1", "k1", channel="email", provider="sendgrid", provider_message_id="sgmsg1"
    )

    sendgrid_post(client, [sg_event("open", None, "e1")], key=sendgrid_key)

    assert message(db, row).status == "opened"


def test_machine_opens_do_not_count_as_opens(db, client, sendgrid_key):
    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1", channel="email", provider="sendgrid")

    sendgrid_post(client, [sg_event("open", "k1", "e1", sg_machine_open=True)], key=sendgrid_key)

    assert message(db, row).status == "sent"


def test_duplicate_events_are_ignored_by_sg_event_id(db, client, sendgrid_key):
    add_user(db.factory, "u1", NOW)
    add_message(db, "u1", "k1", channel="email", provider="sendgrid")
    t = int(NOW.timestamp())
    unsubscribe = sg_event("group_unsubscribe", "k1", "e1", asm_group_id=42, timestamp=t - 60)

    sendgrid_post(client, [unsubscribe], key=sendgrid_key)
    assert consents(db, "u1")[("email", "marketing")][0] == "unsubscribed"
    sendgrid_post(client, [sg_event("group_resubscribe", "k1", "e2")], key=sendgrid_key)
    retried = sendgrid_post(client, [unsubscribe], key=sendgrid_key)

    assert retried.status_code == 200
    assert consents(db, "u1") == {
        ("email", "marketing"): ("subscribed", "sendgrid_group_resubscribe")
    }
    with db.factory() as session:
        assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 2


def test_a_hard_bounce_fails_the_message_and_unsubscribes_the_address(db, client, sendgrid_key):
    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1", channel="email", provider="sendgrid")
    bounce = sg_event("bounce", "k1", "e1", type="bounce", status="5.1.1", reason="no such user")

    sendgrid_post(client, [bounce], key=sendgrid_key)
    sendgrid_post(client, [sg_event("delivered", "k1", "e2")], key=sendgrid_key)

    after = message(db, row)
    assert (after.status, after.reason, after.failed_at) == ("bounced", "hard_bounce", NOW)
    assert consents(db, "u1") == {
        ("email", "marketing"): ("unsubscribed", "bounce"),
        ("email", "transactional"): ("unsubscribed", "bounce"),
    }


def test_a_blocked_message_bounces_without_touching_consent(db, client, sendgrid_key):
    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1", channel="email", provider="sendgrid")

    sendgrid_post(client, [sg_event("bounce", "k1", "e1", type="blocked")], key=sendgrid_key)

    assert (message(db, row).status, message(db, row).reason) == ("bounced", "blocked")
    assert consents(db, "u1") == {}


def test_a_dropped_message_fails_with_sendgrids_reason(db, client, sendgrid_key):
    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1", channel="email", provider="sendgrid")

    dropped = sg_event("dropped", "k1", "e1", reason="Unsubscribed Address")
    sendgrid_post(client, [dropped], key=sendgrid_key)

    after = message(db, row)
    assert (after.status, after.reason) == ("failed", "dropped_unsubscribed_address")


def test_spam_reports_and_unsubscribes_stop_marketing_email_only(db, client, sendgrid_key):
    add_user(db.factory, "u1", NOW)
    add_user(db.factory, "u2", NOW, email="Someone@Example.com", push_token=None)
    add_message(db, "u1", "k1", channel="email", provider="sendgrid")

    sendgrid_post(client, [sg_event("spamreport", "k1", "e1")], key=sendgrid_key)
    # No key and an unknown message id: the address finds the user.
    by_address = sg_event(
        "unsubscribe", None, "e2", email="someone@example.com", sg_message_id="other.1"
    )
    sendgrid_post(client, [by_address], key=sendgrid_key)

    assert consents(db, "u1") == {("email", "marketing"): ("unsubscribed", "spamreport")}
    assert consents(db, "u2") == {("email", "marketing"): ("unsubscribed", "sendgrid_unsubscribe")}


def test_a_body_that_is_not_an_event_array_is_refused(db, client, sendgrid_key):
    response = sendgrid_post(client, {"event": "open"}, key=sendgrid_key)  # type: ignore[arg-type]

    assert response.status_code == 400


@pytest.mark.parametrize(
    "poison",
    [
        {"lifecycle_key": "k\udc00"},
        {"sg_message_id": "\ud800.filter"},
        {"sg_event_id": "e\udfff"},
        {"event": "bounce", "email": "u1\udc80@example.com"},
        {"reason": "a\x00b", "event": "dropped"},
    ],
    ids=["key", "sg_message_id", "sg_event_id", "bounce_email", "nul"],
)
def test_one_unstorable_sendgrid_event_never_fails_the_batch(
    db, client, sendgrid_key, poison: dict[str, Any]
):
    from store.models import RejectedEvent

    add_user(db.factory, "u1", NOW)
    row = add_message(db, "u1", "k1", channel="email", provider="sendgrid")
    bad = {**sg_event("delivered", "k1", "e-bad"), **poison}
    batch = [sg_event("delivered", "k1", "e1"), bad, sg_event("open", "k1", "e2")]

    for _ in range(2):  # SendGrid retries a batch it saw fail: it must not fail again
        assert sendgrid_post(client, batch, key=sendgrid_key).status_code == 200
    assert message(db, row).status == "opened"
    with db.factory() as session:
        kept = session.scalars(select(RejectedEvent)).all()
    assert len(kept) == 2  # once per delivery of the batch: kept, raw, with the reason
    assert all(r.source == "/webhooks/sendgrid" for r in kept)
    assert all("NUL character or an unpaired surrogate" in r.reason for r in kept)
    assert all(r.raw.isascii() for r in kept)


def test_a_signed_twilio_form_with_a_nul_is_refused_and_kept_not_a_500(db, client):
    from store.models import RejectedEvent

    add_user(db.factory, "u1", NOW)
    answer = status_callback(client, "SM\x00bad", "delivered")
    assert answer.status_code == 400
    assert "MessageSid contains a NUL character" in answer.text
    reply = inbound(client, "STOP\x00", sid="SMin-nul")
    assert reply.status_code == 400
    with db.factory() as session:
        kept = session.scalars(select(RejectedEvent).order_by(RejectedEvent.id)).all()
    assert [r.source for r in kept] == ["/webhooks/twilio/status", "/webhooks/twilio/inbound"]
    assert all(r.raw.isascii() and "\\u0000" in r.raw for r in kept)
