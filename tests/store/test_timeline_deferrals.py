"""A journey send held by quiet hours, as `deliver` leaves it in the ledger, reads in the
user's timeline as deferred, with the reason and the time it will be tried again."""

from __future__ import annotations

from datetime import UTC, datetime

from delivery_support import deliver, outbox_delivery
from journey_support import add_user
from store.reports import user_timeline
from workflows.contracts import DeliverInput, EventSignal

EVENING = datetime(2026, 12, 5, 13, 30, tzinfo=UTC)  # 21:30 in Shanghai


def test_a_send_held_by_quiet_hours_reads_as_deferred_in_the_timeline(db):
    add_user(db.factory, "u1", EVENING, timezone="Asia/Shanghai")
    activities = outbox_delivery(db.factory, quiet_hours="21:00-08:00")
    held = deliver(
        activities,
        DeliverInput(
            idempotency_key="run/welcome_sms/1",
            enrollment_id=None,  # type: ignore[arg-type]
            journey_id="new_user_coupon",
            step_id="welcome_sms",
            user_id="u1",
            channel="sms",
            template="cart_low_stock_sms",
            topic="marketing",
            group="treatment",
            now=EVENING,
            trigger=EventSignal(message_id="t", event="user_signed_up", timestamp=EVENING),
        ),
    )
    assert (held.status, held.reason) == ("deferred", "quiet_hours")
    with db.factory() as session:
        texts = [e.text for e in user_timeline(session, user_id="u1") if e.kind == "message"]
    assert texts == [
        "sms welcome_sms (cart_low_stock_sms): deferred — quiet hours; will be tried again "
        "2026-12-06 08:00 Asia/Shanghai (2026-12-06 00:00 UTC)"
    ]
