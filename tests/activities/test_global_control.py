"""A user in the global control group gets no marketing message, recorded as such in the
ledger; transactional messages still reach them, and everyone else is sent to."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from delivery_support import deliver, outbox_delivery
from journey_support import add_user, ledger, outbox
from store.program import in_global_control
from workflows.contracts import DeliverInput, EventSignal

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: no quiet hours
SALT = "global-control"  # the settings' default salt


def request(user_id: str, topic: str = "marketing") -> DeliverInput:
    return DeliverInput(
        idempotency_key=f"run-{user_id}/s/{topic}",
        enrollment_id=None,  # type: ignore[arg-type]
        journey_id="j",
        step_id="s",
        user_id=user_id,
        channel="sms",
        template="cart_low_stock_sms",
        topic=topic,
        group="treatment",
        now=NOW,
        trigger=EventSignal(message_id="t", event="cart_updated", timestamp=NOW),
    )


def test_the_global_control_gets_no_marketing(db):
    ids = [f"user-{i}" for i in range(40)]
    control = next(u for u in ids if in_global_control(u, percent=20, salt=SALT))
    exposed = next(u for u in ids if not in_global_control(u, percent=20, salt=SALT))
    for user in (control, exposed):
        add_user(db.factory, user, NOW)
    activities = outbox_delivery(db.factory, global_control_percent=20)

    held = deliver(activities, request(control))
    assert (held.status, held.reason) == ("skipped", "global_control")
    assert deliver(activities, request(exposed)).status == "sent"
    assert deliver(activities, request(control, "transactional")).status == "sent"

    rows = {(m.topic, m.status, m.reason) for m in ledger(db.factory, control)}
    assert rows == {("marketing", "skipped", "global_control"), ("transactional", "sent", None)}
    assert len(outbox(db.factory)) == 2

    # No global control configured: the same user is sent to.
    plain = outbox_delivery(db.factory)
    again = replace(request(control), idempotency_key="run-again/s/marketing")
    assert deliver(plain, again).status == "sent"
