"""pause-all holds every send (deferred, ledger row kept) until resume-all."""

from __future__ import annotations

from datetime import UTC, datetime

from delivery_support import deliver, outbox_delivery
from journey_support import add_user, ledger, outbox
from store.control import sends_paused, set_sends_paused
from store.db import transaction
from workflows.contracts import DeliverInput, EventSignal

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)


def test_pause_all_defers_then_resume_all_sends(db):
    add_user(db.factory, "held", NOW)
    activities = outbox_delivery(db.factory)
    request = DeliverInput(
        idempotency_key="run/s/1",
        enrollment_id=None,  # type: ignore[arg-type]
        journey_id="j",
        step_id="s",
        user_id="held",
        channel="sms",
        template="cart_low_stock_sms",
        topic="transactional",
        group="treatment",
        now=NOW,
        trigger=EventSignal(message_id="t", event="cart_updated", timestamp=NOW),
    )
    with transaction(db.factory) as session:
        set_sends_paused(session, paused=True, now=NOW)
    held = deliver(activities, request)
    assert (held.status, held.reason) == ("deferred", "paused_all")
    assert held.defer_until is not None and held.defer_until > NOW
    assert [m.status for m in ledger(db.factory, "held")] == ["pending"] and outbox(
        db.factory
    ) == []

    with transaction(db.factory) as session:
        set_sends_paused(session, paused=False, now=NOW)
    assert deliver(activities, request).status == "sent"
    assert len(outbox(db.factory)) == 1


def test_a_pause_turned_in_a_session_counts_in_that_session(db) -> None:
    with transaction(db.factory) as session:
        assert not sends_paused(session)
        set_sends_paused(session, paused=True, now=NOW)
        assert sends_paused(session)
        set_sends_paused(session, paused=False, now=NOW)
        assert not sends_paused(session)
