"""Console tests: a client of the console mounted at /console on the test's database, and
seed data written through the store."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from config import Settings
from console.app import console_app
from journey_support import add_user, publish_shipped
from store.db import transaction
from store.models import Consent, Enrollment, Message
from workflows.ids import journey_workflow_id

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
TOKEN = "console-test-token"  # noqa: S105


def console_client(db, *, token: str = TOKEN, **settings_fields: Any) -> TestClient:
    app = FastAPI()
    # Deployed-like ("test", own secrets), so a public URL beyond loopback is allowed too.
    settings = Settings(
        environment="test",
        admin_token=token,
        write_key="console-test-write-key",
        unsubscribe_secret=SecretStr("console-test-unsubscribe-secret"),
        **settings_fields,
    )
    app.mount("/console", console_app(settings, session_factory=db.factory, clock=lambda: NOW))
    return TestClient(app, follow_redirects=False)


def log_in(http: TestClient, token: str = TOKEN) -> str:
    """Log in; the CSRF token of the new session, read from a page's forms."""
    answer = http.post("/console/login", data={"token": token})
    assert answer.status_code == 303, answer.text
    return csrf_of(http.get("/console/journeys").text)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def enroll(
    db,
    user_id: str,
    journey_id: str = "new_user_coupon",
    *,
    group: str = "treatment",
    entered: datetime = NOW - timedelta(days=3),
    converted: datetime | None = None,
    exit_reason: str | None = None,
) -> int:
    with transaction(db.factory) as session:
        row = Enrollment(
            journey_id=journey_id,
            journey_version=1,
            user_id=user_id,
            group=group,
            workflow_id=journey_workflow_id(journey_id, user_id),
            entered_at=entered,
            converted_at=converted,
            exited_at=converted or (entered + timedelta(days=7) if exit_reason else None),
            exit_reason="converted" if converted else exit_reason,
        )
        session.add(row)
        session.flush()
        return row.id


def message_row(
    user_id: str,
    step: str,
    status: str,
    *,
    journey_id: str = "new_user_coupon",
    channel: str = "sms",
    reason: str | None = None,
    at: datetime = NOW - timedelta(days=2),
    enrollment_id: int | None = None,
) -> Message:
    """A ledger row as delivery writes it (the key unique per user, step and instant)."""
    return Message(
        idempotency_key=f"{journey_id}:{user_id}:{step}:{at.isoformat()}",
        enrollment_id=enrollment_id,
        journey_id=journey_id,
        step_id=step,
        user_id=user_id,
        channel=channel,
        template=f"{step}_template",
        status=status,
        reason=reason,
        created_at=at,
        sent_at=at if status == "sent" else None,
    )


def record_send(db, user_id: str, step: str, status: str, **fields: Any) -> None:
    with transaction(db.factory) as session:
        session.add(message_row(user_id, step, status, **fields))


def seed_journey(db) -> None:
    """new_user_coupon published with five users in it (u1 converted, u5 held out); the
    welcome SMS sent twice, skipped twice (frequency cap, holdout) and held once."""
    publish_shipped(db.factory, "new_user_coupon", NOW - timedelta(days=10))
    for user in ("u1", "u2", "u3", "u4", "u5"):
        add_user(db.factory, user, NOW - timedelta(days=3))
    with transaction(db.factory) as session:
        session.add(
            Consent(
                user_id="u1",
                channel="sms",
                topic="marketing",
                status="unsubscribed",
                source="twilio_stop",
                updated_at=NOW - timedelta(days=1),
            )
        )
    first = enroll(db, "u1", converted=NOW - timedelta(days=1))
    enroll(db, "u2")
    enroll(db, "u3")
    enroll(db, "u4")
    enroll(db, "u5", group="holdout")
    record_send(db, "u1", "welcome_sms", "sent", enrollment_id=first)
    record_send(db, "u2", "welcome_sms", "sent")
    record_send(db, "u3", "welcome_sms", "skipped", reason="frequency_cap")
    record_send(db, "u4", "welcome_sms", "pending")
    record_send(db, "u5", "welcome_sms", "skipped", reason="holdout")
