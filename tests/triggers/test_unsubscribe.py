"""Unsubscribe links: signed tokens, the confirmation page and RFC 8058 one-click."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy import select

from activities.coupons import CouponActivities
from api.app import create_app
from channels.base import OutboundMessage, SendResult
from config import Settings
from delivery_support import deliver, delivery_activities
from journey_support import add_user
from message_templates.unsubscribe_links import BadUnsubscribeToken, UnsubscribeLinks
from store.db import transaction
from store.models import Consent, Enrollment
from triggers.ingest import NullRouter
from workflows.contracts import DeliverInput, EventSignal, IssueCouponInput
from workflows.ids import journey_workflow_id

PUBLIC = "http://127.0.0.1:8000"
SECRET = "unsubscribe-secret-for-tests"
NOW = datetime(2025, 5, 1, 2, 0, tzinfo=UTC)
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def links() -> UnsubscribeLinks:
    return UnsubscribeLinks(SECRET, prefix=f"{PUBLIC}/u")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(db: Any, clock: Clock) -> Iterator[TestClient]:
    settings = Settings(
        environment="development", public_base_url=PUBLIC, unsubscribe_secret=SecretStr(SECRET)
    )
    app = create_app(
        settings, session_factory=db.factory, router=NullRouter(db.factory), clock=clock
    )
    with TestClient(app) as test_client:
        yield test_client


def path_of(url: str) -> str:
    assert url.startswith(f"{PUBLIC}/u/")
    return url.removeprefix(PUBLIC)


def link(links: UnsubscribeLinks, user_id: str = "u1", **fields: Any) -> str:
    values: dict[str, Any] = {
        "channel": "email",
        "topic": "marketing",
        "message_id": 7,
        "now": NOW,
    } | fields
    return path_of(links.url(user_id=user_id, **values))


def consents(db: Any, user_id: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    with db.factory() as session:
        rows = session.scalars(select(Consent).where(Consent.user_id == user_id))
        return {(c.channel, c.topic): (c.status, c.source) for c in rows}


# --- tokens ----------------------------------------------------------------------------------


def test_a_token_says_who_what_and_until_when(links):
    token = link(links, "用户:42", channel="sms", topic="transactional").rsplit("/", 1)[1]

    claim = links.read(token, now=NOW)

    assert (claim.user_id, claim.channel, claim.topic, claim.message_id) == (
        "用户:42",
        "sms",
        "transactional",
        7,
    )
    assert claim.expires_at == NOW + timedelta(days=60)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)


def test_a_token_expires_after_its_validity(links):
    token = link(links).rsplit("/", 1)[1]

    links.read(token, now=NOW + timedelta(days=59, hours=23))
    with pytest.raises(BadUnsubscribeToken) as caught:
        links.read(token, now=NOW + timedelta(days=60))
    assert caught.value.reason == "expired"


def test_a_tampered_or_foreign_token_is_invalid(links):
    token = link(links).rsplit("/", 1)[1]
    body, mac = token.split(".")
    forged_body = UnsubscribeLinks(SECRET, prefix="x").token(
        user_id="u2", channel="email", topic="marketing", message_id=7, expires_at=NOW
    )
    candidates = [
        f"{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{mac}",  # payload changed
        f"{forged_body.split('.')[0]}.{mac}",  # someone else's payload, our mac
        f"{body}.{mac[:-1]}",
        body,
        "",
        "not.a-token",
        f"{body}é.{mac}",
        UnsubscribeLinks("another-secret", prefix="x").token(
            user_id="u1", channel="email", topic="marketing", message_id=7, expires_at=NOW
        ),
    ]
    for candidate in candidates:
        with pytest.raises(BadUnsubscribeToken) as caught:
            links.read(candidate, now=NOW - timedelta(days=1))
        assert caught.value.reason == "invalid", candidate


def test_production_refuses_the_development_unsubscribe_secret():
    with pytest.raises(ValidationError, match="LIFECYCLE_UNSUBSCRIBE_SECRET"):
        Settings(environment="production", write_key="wk", admin_token="at")
    Settings(
        environment="production",
        write_key="wk",
        admin_token="at",
        unsubscribe_secret=SecretStr("s3cret"),
    )


# --- pages -----------------------------------------------------------------------------------


def test_following_the_link_shows_a_confirmation_and_changes_nothing(db, client, links):
    add_user(db.factory, "u1", NOW)

    page = client.get(link(links))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "退订" in html and "Unsubscribe" in html and "营销邮件" in html
    assert re.search(r'<form method="post">', html)
    assert 'name="List-Unsubscribe" value="One-Click"' in html
    # Self-contained: no scripts, stylesheets, images or anything fetched from elsewhere.
    assert not re.search(r"<script|<link|<img|src=|https?://", html)
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert consents(db, "u1") == {}


def test_one_click_post_unsubscribes_at_once(db, client, links):
    add_user(db.factory, "u1", NOW)

    response = client.post(link(links), data=ONE_CLICK)

    assert response.status_code == 200
    assert "已退订" in response.text and "unsubscribed" in response.text
    assert consents(db, "u1") == {("email", "marketing"): ("unsubscribed", "unsubscribe_link")}


def test_the_link_unsubscribes_only_its_own_channel_and_topic(db, client, links):
    add_user(db.factory, "u1", NOW)

    client.post(link(links, channel="sms"), data=ONE_CLICK)
    client.post(link(links, channel="sms"), data=ONE_CLICK)  # twice is the same as once

    assert consents(db, "u1") == {("sms", "marketing"): ("unsubscribed", "unsubscribe_link")}


def test_an_expired_link_answers_400_and_changes_nothing(db, client, links, clock):
    add_user(db.factory, "u1", NOW)
    url = link(links)
    clock.now = NOW + timedelta(days=61)

    shown = client.get(url)
    posted = client.post(url, data=ONE_CLICK)

    for response in (shown, posted):
        assert response.status_code == 400
        assert "过期" in response.text and "expired" in response.text
    assert consents(db, "u1") == {}


def test_a_tampered_link_answers_400_and_changes_nothing(db, client, links):
    add_user(db.factory, "u1", NOW)
    add_user(db.factory, "u2", NOW, push_token=None)
    body, mac = link(links, "u1").rsplit("/", 1)[1].split(".")
    other_body = link(links, "u2").rsplit("/", 1)[1].split(".")[0]

    posted = client.post(f"/u/{other_body}.{mac}", data=ONE_CLICK)
    legacy = client.post("/u/123", data=ONE_CLICK)  # the old /u/{message_id} form

    for response in (posted, legacy):
        assert response.status_code == 400
        assert "无效" in response.text and "not valid" in response.text
    assert consents(db, "u1") == consents(db, "u2") == {}


def test_a_link_for_a_deleted_user_is_answered_without_error(db, client, links):
    response = client.post(link(links, "gone"), data=ONE_CLICK)

    assert response.status_code == 200


# --- the link in a real send -----------------------------------------------------------------


class CapturingEmail:
    name = "capture"

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult(provider=self.name, provider_message_id=f"c-{len(self.sent)}")


def last_chance_email(db: Any, user_id: str, occurrence: int) -> DeliverInput:
    with transaction(db.factory) as session:
        enrollment = Enrollment(
            journey_id="new_user_coupon",
            journey_version=1,
            user_id=user_id,
            entry_number=occurrence,
            group="treatment",
            workflow_id=journey_workflow_id("new_user_coupon", user_id, entry=occurrence),
            entered_at=NOW,
        )
        session.add(enrollment)
        session.flush()
        enrollment_id = enrollment.id
    coupon = CouponActivities(db.factory).issue_coupon(
        IssueCouponInput(
            issue_key=f"run-{user_id}-{occurrence}/coupon/1",
            user_id=user_id,
            journey_id="new_user_coupon",
            amount_fen=2000,
            min_spend_fen=5000,
            valid_for=timedelta(days=7),
            now=NOW,
        )
    )
    return DeliverInput(
        idempotency_key=f"run-{user_id}-{occurrence}/day6_email/1",
        enrollment_id=enrollment_id,
        journey_id="new_user_coupon",
        step_id="day6_email",
        user_id=user_id,
        channel="email",
        template="new_user_last_chance_email",
        topic="marketing",
        group="treatment",
        now=NOW,
        trigger=EventSignal(message_id="m-1", event="user_signed_up", timestamp=NOW),
        coupon_id=coupon.coupon_id,
    )


def test_the_link_in_a_sent_email_unsubscribes_and_the_next_send_is_skipped(db, client, links):
    add_user(db.factory, "u1", NOW)
    email = CapturingEmail()
    delivery = delivery_activities(db.factory, {"email": email}, links=links)

    assert deliver(delivery, last_chance_email(db, "u1", 1)).status == "sent"
    [sent] = email.sent
    assert sent.unsubscribe_url is not None and sent.unsubscribe_url in (sent.html or "")
    response = client.post(path_of(sent.unsubscribe_url), data=ONE_CLICK)
    assert response.status_code == 200

    again = deliver(delivery, last_chance_email(db, "u1", 2))
    assert (again.status, again.reason) == ("skipped", "unsubscribed")
    assert len(email.sent) == 1
