"""A send order says who asked for it: a journey's step writes its enrollment, journey and
step on the ledger row; a broadcast's recipient writes the broadcast, and poses as no
journey."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.orders import BroadcastRecipient, broadcast_order, step_order
from store.ledger import NewSend
from workflows.broadcast_contracts import SendBatchInput
from workflows.journey_contracts import DeliverInput, EventSignal

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
BATCH = SendBatchInput(
    broadcast_id=3,
    key_prefix="run-9",
    channel="sms",
    template="sale_preheat_sms",
    topic="marketing",
    now=NOW,
    user_ids=["u1"],
)


def test_a_journey_step_writes_its_journey_on_the_ledger_row():
    trigger = EventSignal(message_id="m-1", event="user_signed_up", timestamp=NOW)
    order = step_order(
        DeliverInput(
            idempotency_key="run-1/welcome_sms/1",
            enrollment_id=7,
            journey_id="new_user_coupon",
            step_id="welcome_sms",
            user_id="u1",
            channel="sms",
            template="new_user_welcome_sms",
            topic="marketing",
            group="treatment",
            now=NOW,
            trigger=trigger,
            variant="b",
        )
    )

    assert order.new_send() == NewSend(
        key="run-1/welcome_sms/1",
        user_id="u1",
        channel="sms",
        template="new_user_welcome_sms",
        topic="marketing",
        created_at=NOW,
        enrollment_id=7,
        journey_id="new_user_coupon",
        step_id="welcome_sms",
        variant="b",
    )
    assert order.tag == "new_user_coupon"
    assert order.trigger_context() == {
        "event": "user_signed_up",
        "properties": {},
        "timestamp": NOW,
    }


def test_a_broadcast_recipient_writes_the_broadcast_and_no_journey():
    order = broadcast_order(BATCH, "u1")

    assert order.asked_by == BroadcastRecipient(3)
    row = order.new_send()
    assert (row.key, row.broadcast_id, row.step_id) == ("run-9/u1", 3, "broadcast:3")
    assert (row.enrollment_id, row.journey_id, row.variant) == (None, None, None)
    assert order.tag == "broadcast:3"  # the provider's tag names the broadcast
    assert order.trigger_context() == {"event": "broadcast", "properties": {}, "timestamp": NOW}


def test_a_held_broadcast_send_keeps_its_own_ledger_key():
    order = broadcast_order(BATCH, "u1", key="run-8/u1")
    assert order.key == "run-8/u1"
