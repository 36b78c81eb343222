"""Sends, skips, deferrals, failures and provider latency, as counted by ``deliver`` with
the real Twilio SDK against the local Twilio server, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from delivery_support import deliver, delivery_activities
from journey_support import add_enrollment, add_user
from observability.metrics import PrometheusMetrics, installed
from store.db import transaction
from store.models import Consent
from workflows.contracts import DeliverInput, EventSignal

pytest_plugins = ["provider_fixtures"]

NOW = datetime(2025, 5, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
COUPON = {
    "coupon_code": "WELCOME20",
    "amount_fen": 2000,
    "min_spend_fen": 5000,
    "expires_at": (NOW + timedelta(days=7)).isoformat(),
}


@pytest.fixture
def recorded() -> Iterator[PrometheusMetrics]:
    with installed(PrometheusMetrics()) as recorder:
        yield recorder  # type: ignore[misc]


def welcome_sms(db, user_id: str) -> DeliverInput:
    """The welcome SMS of a new user (with a phone), its coupon named by the trigger."""
    add_user(db.factory, user_id, NOW)
    return DeliverInput(
        idempotency_key=f"run-{user_id}/welcome_sms/1",
        enrollment_id=add_enrollment(db.factory, user_id, NOW),
        journey_id="new_user_coupon",
        step_id="welcome_sms",
        user_id=user_id,
        channel="sms",
        template="new_user_welcome_sms",
        topic="marketing",
        group="treatment",
        now=NOW,
        trigger=EventSignal(
            message_id=f"m-{user_id}", event="coupon_issued", timestamp=NOW, properties=COUPON
        ),
    )


def count(recorder: PrometheusMetrics, name: str, **labels: str) -> float:
    return recorder.registry.get_sample_value(name, labels) or 0.0


def test_each_outcome_of_a_send_moves_its_counter(db, twilio, twilio_server, recorded):
    delivery = delivery_activities(db.factory, {"sms": twilio})

    assert deliver(delivery, welcome_sms(db, "sent-1")).status == "sent"

    unsubscribed = welcome_sms(db, "unsub-1")
    with transaction(db.factory) as session:
        session.add(
            Consent(
                user_id="unsub-1",
                channel="sms",
                topic="marketing",
                status="unsubscribed",
                source="test",
                updated_at=NOW,
            )
        )
    assert deliver(delivery, unsubscribed).reason == "unsubscribed"

    # 10:00 in Shanghai is inside.
    night = delivery_activities(db.factory, {"sms": twilio}, quiet_hours="09:00-23:00")
    assert deliver(night, welcome_sms(db, "night-1")).status == "deferred"

    twilio_server.fail_next(400, code=21211)  # not a valid phone number
    with pytest.raises(ApplicationError):
        deliver(delivery, welcome_sms(db, "invalid-1"))
    twilio_server.fail_next(503)
    with pytest.raises(ApplicationError):
        deliver(delivery, welcome_sms(db, "outage-1"))

    assert count(recorded, "lifecycle_sends_total", channel="sms", provider="twilio") == 1
    assert count(recorded, "lifecycle_skips_total", channel="sms", reason="unsubscribed") == 1
    assert count(recorded, "lifecycle_deferrals_total", channel="sms", reason="quiet_hours") == 1
    failures = {
        reason: count(recorded, "lifecycle_send_failures_total", channel="sms", reason=reason)
        for reason in ("invalid_number", "transient")
    }
    assert failures == {"invalid_number": 1, "transient": 1}
    # Three calls reached Twilio (accepted, refused, failed); each was timed.
    latency = count(
        recorded, "lifecycle_provider_latency_seconds_count", channel="sms", provider="twilio"
    )
    assert latency == 3 == len(twilio_server.requests)


def test_a_retried_activity_does_not_count_its_send_twice(sqlite_db, twilio, recorded):
    delivery = delivery_activities(sqlite_db.factory, {"sms": twilio})
    inp = welcome_sms(sqlite_db, "retry-1")
    assert deliver(delivery, inp).status == "sent"
    assert deliver(delivery, inp).status == "sent"  # the ledger answers; Twilio is not called
    assert count(recorded, "lifecycle_sends_total", channel="sms", provider="twilio") == 1
