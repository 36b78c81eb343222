"""A long Chinese SMS sent through the real Twilio SDK is billed as its segments: the
ledger row keeps the count, and journey money and the program report price it per segment
at the destination's price; a row from before the count, with no outbox body, is 1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import Database
from money_support import COSTS
from sms_segments_support import SEGMENTS, long_sms_renderer

from delivery_support import deliver, delivery_activities
from journey_support import add_enrollment, add_user, ledger
from message_templates.sms import sms_segments
from store.db import transaction
from store.models import Message
from store.money import billed_segments, money_report
from store.program import program_report
from workflows.contracts import DeliverInput, EventSignal

pytest_plugins = ["provider_fixtures"]

NOW = datetime(2026, 5, 1, 4, 0, tzinfo=UTC)
JOURNEY = "long_sms_journey"
TEMPLATE = "long_promo_sms"
PHONES = {"cn": "+8613800138000", "us": "+14155550100", "old": "+8613800138001"}


def enter(db: Database, user_id: str) -> int:
    add_user(db.factory, user_id, NOW - timedelta(days=1), phone=PHONES[user_id])
    return add_enrollment(db.factory, user_id, NOW, JOURNEY)


def send_step(enrollment_id: int, user_id: str) -> DeliverInput:
    return DeliverInput(
        idempotency_key=f"run-{user_id}/promo_sms/1",
        enrollment_id=enrollment_id,
        journey_id=JOURNEY,
        step_id="promo_sms",
        user_id=user_id,
        channel="sms",
        template=TEMPLATE,
        topic="marketing",
        group="treatment",
        now=NOW,
        trigger=EventSignal(message_id=f"m-{user_id}", event="signed_up", timestamp=NOW),
    )


def test_a_long_chinese_sms_is_priced_per_segment_it_was_billed_as(
    db: Database, twilio, twilio_server, tmp_path
) -> None:
    delivery = delivery_activities(
        db.factory, {"sms": twilio}, renderer=long_sms_renderer(tmp_path / "t", TEMPLATE)
    )
    for user_id in ("cn", "us"):
        assert deliver(delivery, send_step(enter(db, user_id), user_id)).status == "sent"
    # A row from before the ledger kept the count: no segments, and Twilio keeps no body.
    old = enter(db, "old")
    with transaction(db.factory) as session:
        session.add(
            Message(
                idempotency_key="run-old/promo_sms/1", enrollment_id=old, journey_id=JOURNEY,
                step_id="promo_sms", user_id="old", channel="sms", template=TEMPLATE,
                status="delivered", created_at=NOW, sent_at=NOW,
            )
        )  # fmt: skip

    bodies = [request.body["Body"] for request in twilio_server.messages]
    assert [sms_segments(body) for body in bodies] == [SEGMENTS, SEGMENTS]
    assert [row.segments for u in ("cn", "us", "old") for row in ledger(db.factory, u)] == [
        SEGMENTS,
        SEGMENTS,
        None,
    ]
    # 3 segments at 5 fen to China, 3 at 60 to the US, 1 at 5 for the old row.
    expected = SEGMENTS * 5 + SEGMENTS * 60 + 5
    with db.factory() as session:
        money = money_report(session, journey_id=JOURNEY, costs=COSTS)
        program = program_report(
            session, until=NOW + timedelta(days=1), percent=0, salt="s", costs=COSTS
        )
    assert money.journey.treatment.message_fen == expected
    assert program.money.treatment.message_fen == expected


def test_a_row_is_billed_as_its_recorded_segments_else_its_outbox_body_else_one() -> None:
    assert billed_segments(4, "short") == 4
    assert billed_segments(None, "中" * 71) == 2
    assert billed_segments(None, None) == 1
    assert billed_segments(None, "") == 1
