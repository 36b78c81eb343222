"""Facts apply in the order they happened, not the order they arrived.

Consent, profile traits and push tokens each carry the time the fact happened (a SendGrid
event's ``timestamp``, a Twilio reply's receipt, an unsubscribe click, an identify call's
``timestamp``). An older fact never overrides a newer one; an opt-out wins a tie. Every test
drives the real endpoints, as the platform and the providers call them.
"""

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
from pydantic import SecretStr
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from api.app import create_app
from config import Settings
from journey_support import add_user
from message_templates.unsubscribe_links import UnsubscribeLinks
from store.db import transaction
from store.models import Consent, PushToken, User
from store.webhooks import forget_push_token, set_consent
from triggers.ingest import NullRouter

PUBLIC = "http://127.0.0.1:8000"
WRITE_KEY = "wk-fact-order"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
UNSUBSCRIBE_SECRET = "unsubscribe-secret-for-tests"
NOW = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
PHONE = "+8613800138000"
EMAIL = "u1@example.com"


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta = timedelta(minutes=1)) -> None:
        self.now += delta


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def links() -> UnsubscribeLinks:
    return UnsubscribeLinks(UNSUBSCRIBE_SECRET, prefix=f"{PUBLIC}/u")


@pytest.fixture
def client(db: Any, clock: Clock, sendgrid_key: ec.EllipticCurvePrivateKey) -> Iterator[TestClient]:
    der = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = Settings(
        environment="test",
        write_key=WRITE_KEY,
        admin_token="admin-token-for-tests",
        public_base_url=PUBLIC,
        twilio_auth_token=SecretStr(TWILIO_TOKEN),
        sendgrid_webhook_public_key=base64.b64encode(der).decode(),
        unsubscribe_secret=SecretStr(UNSUBSCRIBE_SECRET),
    )
    app = create_app(
        settings, session_factory=db.factory, router=NullRouter(db.factory), clock=clock
    )
    with TestClient(app) as test_client:
        yield test_client


# --- how the platform and the providers call ---------------------------------------------------


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def identify(
    client: TestClient,
    at: datetime,
    traits: dict[str, Any],
    *,
    user_id: str = "u1",
    **fields: Any,
) -> None:
    body = {"userId": user_id, "traits": traits, "timestamp": iso(at), **fields}
    response = client.post("/v1/identify", content=json.dumps(body).encode(), auth=(WRITE_KEY, ""))
    assert response.status_code == 200, response.text


def sms_reply(client: TestClient, body: str, *, sid: str) -> None:
    params = {"MessageSid": sid, "From": PHONE, "To": "+15005550006", "Body": body}
    path = "/webhooks/twilio/inbound"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, params)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text


def sendgrid(
    client: TestClient,
    key: ec.EllipticCurvePrivateKey,
    clock: Clock,
    kind: str,
    at: datetime,
    *,
    event_id: str,
) -> None:
    """One SendGrid event about ``EMAIL`` that happened ``at``, posted (and signed) now."""
    event = {
        "email": EMAIL,
        "timestamp": int(at.timestamp()),
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": "unknown.filterdrecv-1.0",
    }
    raw = json.dumps([event]).encode()
    timestamp = str(int(clock().timestamp()))
    signature = key.sign(timestamp.encode() + raw, ec.ECDSA(hashes.SHA256()))
    response = client.post(
        "/webhooks/sendgrid",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )
    assert response.status_code == 200, response.text


def click_unsubscribe(
    client: TestClient, links: UnsubscribeLinks, clock: Clock, *, channel: str = "email"
) -> None:
    url = links.url(user_id="u1", channel=channel, topic="marketing", message_id=7, now=clock())
    response = client.post(url.removeprefix(PUBLIC), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200, response.text


def consent(db: Any, channel: str, topic: str = "marketing", user_id: str = "u1") -> str | None:
    with db.factory() as session:
        row = session.get(Consent, (user_id, channel, topic))
        return row.status if row else None


def profile(db: Any, user_id: str = "u1") -> User:
    with db.factory() as session:
        return session.get_one(User, user_id)


def token_owner(db: Any, token: str) -> str | None:
    with db.factory() as session:
        return session.scalar(select(PushToken.user_id).where(PushToken.token == token))


# --- consent -----------------------------------------------------------------------------------


def test_an_old_resubscribe_does_not_undo_a_newer_unsubscribe_click(
    db, client, clock, links, sendgrid_key
):
    add_user(db.factory, "u1", NOW - timedelta(days=30))
    click_unsubscribe(client, links, clock)
    clock.advance()

    # SendGrid reports, a minute later, a resubscribe that happened yesterday.
    sendgrid(
        client, sendgrid_key, clock, "group_resubscribe", NOW - timedelta(hours=24), event_id="e1"
    )

    assert consent(db, "email") == "unsubscribed"


def test_a_resubscribe_after_the_unsubscribe_click_does_resubscribe(
    db, client, clock, links, sendgrid_key
):
    add_user(db.factory, "u1", NOW - timedelta(days=30))
    click_unsubscribe(client, links, clock)
    clock.advance(timedelta(minutes=5))

    sendgrid(
        client, sendgrid_key, clock, "group_resubscribe", NOW + timedelta(minutes=2), event_id="e1"
    )

    assert consent(db, "email") == "subscribed"


@pytest.mark.parametrize(
    "arrivals",
    [("group_unsubscribe", "group_resubscribe"), ("group_resubscribe", "group_unsubscribe")],
)
def test_an_opt_out_wins_a_tie_whichever_arrives_first(db, client, clock, sendgrid_key, arrivals):
    add_user(db.factory, "u1", NOW - timedelta(days=30))
    same_second = NOW - timedelta(minutes=10)

    for n, kind in enumerate(arrivals):
        sendgrid(client, sendgrid_key, clock, kind, same_second, event_id=f"e{n}")
        clock.advance()

    assert consent(db, "email") == "unsubscribed"


def test_a_sendgrid_event_dated_ahead_of_our_clock_counts_as_received(
    db, client, clock, links, sendgrid_key
):
    add_user(db.factory, "u1", NOW - timedelta(days=30))
    # SendGrid's clock a minute ahead of ours: the resubscribe cannot outrank a click that
    # happens after it reached us.
    sendgrid(
        client, sendgrid_key, clock, "group_resubscribe", NOW + timedelta(minutes=1), event_id="e1"
    )
    clock.advance(timedelta(seconds=30))

    click_unsubscribe(client, links, clock)

    assert consent(db, "email") == "unsubscribed"


def test_an_older_identify_does_not_resubscribe_after_an_sms_stop(db, client, clock):
    add_user(db.factory, "u1", NOW - timedelta(days=30))
    sms_reply(client, "STOP", sid="SMin1")
    clock.advance()

    # The platform's identify from an hour before the STOP arrives after it.
    identify(client, NOW - timedelta(hours=1), {"unsubscribed_sms": False})

    assert consent(db, "sms") == "unsubscribed"


def test_identify_consent_is_dated_by_the_call_not_its_arrival(db, client, clock, links):
    add_user(db.factory, "u1", NOW - timedelta(days=30))
    click_unsubscribe(client, links, clock)
    clock.advance(timedelta(hours=2))

    # Sent an hour before the click, delivered two hours after it (a device back online).
    identify(client, NOW - timedelta(hours=1), {"unsubscribed_email": False})
    assert consent(db, "email") == "unsubscribed"

    identify(client, clock() - timedelta(minutes=1), {"unsubscribed_email": False})
    assert consent(db, "email") == "subscribed"


def test_identify_consent_calls_arriving_out_of_order(db, client, clock):
    identify(client, NOW - timedelta(minutes=1), {"unsubscribed_email": True})
    identify(client, NOW - timedelta(minutes=5), {"unsubscribed_email": False})

    assert consent(db, "email") == "unsubscribed"


def test_an_sms_reply_moves_consent_in_the_order_received(db, client, clock):
    add_user(db.factory, "u1", NOW - timedelta(days=30))

    sms_reply(client, "STOP", sid="SMin1")
    clock.advance(timedelta(seconds=1))
    sms_reply(client, "START", sid="SMin2")
    assert consent(db, "sms") == "subscribed"

    clock.advance(timedelta(seconds=1))
    sms_reply(client, "STOP", sid="SMin1")  # Twilio retrying the first: already applied
    assert consent(db, "sms") == "subscribed"


@pytest.mark.parametrize("word", ["START", "YES", "UNSTOP", "yes", " Yes! "])
def test_twilios_opt_in_words_resubscribe(db, client, clock, word):
    add_user(db.factory, "u1", NOW - timedelta(days=30))
    sms_reply(client, "STOP", sid="SMin1")
    clock.advance(timedelta(seconds=1))

    sms_reply(client, word, sid="SMin2")

    assert consent(db, "sms", "marketing") == "subscribed"
    assert consent(db, "sms", "transactional") == "subscribed"


def test_set_consent_counts_the_users_it_changed(db):
    add_user(db.factory, "u1", NOW - timedelta(days=30))
    add_user(db.factory, "u2", NOW - timedelta(days=30), push_token=None)

    def unsubscribe(users: list[str], at: datetime, status: str = "unsubscribed") -> int:
        with transaction(db.factory) as session:
            return set_consent(
                session, user_ids=users, channel="sms", status=status, source="test", at=at
            )

    assert unsubscribe(["u1"], NOW) == 1
    assert unsubscribe(["u1", "u2", "nobody"], NOW - timedelta(hours=1), "subscribed") == 1
    assert unsubscribe(["u1"], NOW, "subscribed") == 0
    assert (consent(db, "sms", user_id="u1"), consent(db, "sms", user_id="u2")) == (
        "unsubscribed",
        "subscribed",
    )


# --- profile traits ----------------------------------------------------------------------------


def test_an_older_identify_does_not_overwrite_traits_a_newer_one_set(db, client, clock):
    newer, older = NOW - timedelta(minutes=1), NOW - timedelta(hours=3)
    identify(client, newer, {"email": "new@example.com", "plan": "pro", "member_tier": "gold"})
    clock.advance()
    identify(
        client,
        older,
        {
            "email": "old@example.com",
            "plan": "free",
            "member_tier": "silver",
            "nickname": "小王",  # the newer call did not mention it: still set
            "phone": "+86 138 0013 8000",
        },
    )

    user = profile(db)
    assert (user.email, user.member_tier, user.phone) == (
        "new@example.com",
        "gold",
        "+8613800138000",
    )
    assert user.traits["plan"] == "pro"
    assert user.traits["email"] == "new@example.com"
    assert user.traits["nickname"] == "小王"

    # A later call still changes what an earlier one set.
    identify(client, NOW, {"plan": "enterprise", "nickname": "老王"})
    user = profile(db)
    assert (user.traits["plan"], user.traits["nickname"]) == ("enterprise", "老王")


def test_an_older_identifys_device_locale_does_not_replace_a_newer_locale_trait(db, client, clock):
    identify(client, NOW - timedelta(minutes=1), {"locale": "en-US", "timezone": "Europe/Paris"})
    identify(
        client,
        NOW - timedelta(hours=1),
        {},
        context={"locale": "zh-CN", "timezone": "Asia/Shanghai"},
    )

    user = profile(db)
    assert (user.locale, user.timezone) == ("en-US", "Europe/Paris")


def test_a_future_dated_identify_does_not_freeze_a_trait(db, client, clock):
    # A device clock half an hour fast: the call cannot have happened after it reached us.
    identify(client, NOW + timedelta(minutes=30), {"plan": "free"})
    clock.advance()
    identify(client, clock() - timedelta(seconds=1), {"plan": "pro"})

    assert profile(db).traits["plan"] == "pro"


# --- push tokens -------------------------------------------------------------------------------


def test_an_older_token_registration_does_not_take_a_device_back(db, client, clock):
    # The device moved to u2 at 09:00; u1's registration from 08:00 arrives after that.
    identify(client, NOW - timedelta(hours=1), {"push_token": "tok-1"}, user_id="u2")
    clock.advance()
    identify(client, NOW - timedelta(hours=2), {"push_token": "tok-1", "push_platform": "ios"})

    assert token_owner(db, "tok-1") == "u2"

    identify(client, NOW, {"push_token": "tok-1"})
    assert token_owner(db, "tok-1") == "u1"


def test_a_token_removal_older_than_its_registration_keeps_it(db, client, clock):
    identify(client, NOW - timedelta(minutes=1), {"push_token": "tok-1"})

    with transaction(db.factory) as session:
        assert not forget_push_token(session, token="tok-1", at=NOW - timedelta(hours=1))
    assert token_owner(db, "tok-1") == "u1"

    with transaction(db.factory) as session:
        assert forget_push_token(session, token="tok-1", at=NOW)
    assert token_owner(db, "tok-1") is None
