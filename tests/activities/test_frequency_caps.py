"""Frequency caps hold across journeys, even when two journeys send at the same moment."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from activities.delivery import DeliveryActivities
from activities.policy import FrequencyCap
from delivery_support import deliver, outbox_delivery
from journey_support import add_user, ledger, outbox
from workflows.contracts import DeliverInput, EventSignal

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CAPS = (FrequencyCap(1, timedelta(days=1), "sms"), FrequencyCap(3, timedelta(days=7)))


def delivery(db) -> DeliveryActivities:
    return outbox_delivery(db.factory, caps=CAPS)


def request(journey: str, step: str, channel: str, at: datetime, topic="marketing") -> DeliverInput:
    template = {"sms": "cart_low_stock_sms", "push": "cart_reminder_push"}[channel]
    return DeliverInput(
        idempotency_key=f"{journey}/{step}/{at.isoformat()}",
        enrollment_id=None,  # type: ignore[arg-type]
        journey_id=journey,
        step_id=step,
        user_id="capped",
        channel=channel,
        template=template,
        topic=topic,
        group="treatment",
        now=at,
        trigger=EventSignal(message_id="t", event="cart_updated", timestamp=at),
    )


def test_two_journeys_at_the_same_moment_pass_the_sms_cap_once(db):
    add_user(db.factory, "capped", NOW)
    activities = delivery(db)
    barrier = threading.Barrier(2)
    results = {}

    def send(journey: str) -> None:
        barrier.wait()
        results[journey] = deliver(activities, request(journey, "sms_step", "sms", NOW))

    threads = [threading.Thread(target=send, args=(j,)) for j in ("cart_abandonment", "dormancy")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    outcomes = sorted((r.status, r.reason) for r in results.values())
    assert outcomes == [("sent", None), ("skipped", "frequency_cap")]
    assert [m.channel for m in outbox(db.factory)] == ["sms"]


def test_the_daily_sms_cap_holds_sms_only(db):
    add_user(db.factory, "capped", NOW)
    activities = delivery(db)
    assert deliver(activities, request("a", "sms1", "sms", NOW)).status == "sent"
    later = NOW + timedelta(hours=1)
    second_sms = deliver(activities, request("b", "sms2", "sms", later))
    assert (second_sms.status, second_sms.reason) == ("skipped", "frequency_cap")
    # The day's SMS leaves room on the other channels, up to the weekly cap on all of them.
    assert deliver(activities, request("b", "push1", "push", later)).status == "sent"
    assert deliver(activities, request("c", "push2", "push", later)).status == "sent"
    over_week = deliver(activities, request("d", "push3", "push", later))
    assert (over_week.status, over_week.reason) == ("skipped", "frequency_cap")
    assert sorted(m.channel for m in outbox(db.factory)) == ["push", "push", "sms"]


def test_weekly_cap_counts_every_channel_and_transactional_is_exempt(db):
    add_user(db.factory, "capped", NOW)
    activities = delivery(db)
    days = [NOW + timedelta(days=d) for d in range(5)]
    statuses = [
        deliver(activities, request("j", f"push{i}", "push", at)).status
        for i, at in enumerate(days)
    ]
    assert statuses == ["sent", "sent", "sent", "skipped", "skipped"]
    # A week after the first send, there is room again.
    assert (
        deliver(activities, request("j", "later", "push", NOW + timedelta(days=7, hours=1))).status
        == "sent"
    )
    receipt = deliver(activities, request("j", "receipt", "push", days[4], topic="transactional"))
    assert receipt.status == "sent"
    assert {(m.reason) for m in ledger(db.factory, "capped") if m.status == "skipped"} == {
        "frequency_cap"
    }


def test_a_retried_send_that_passed_the_cap_is_not_capped_by_itself(db):
    add_user(db.factory, "capped", NOW)
    activities = delivery(db)
    first = deliver(activities, request("j", "sms_step", "sms", NOW))
    again = deliver(activities, request("j", "sms_step", "sms", NOW))
    assert (first.status, again.status) == ("sent", "sent")
    assert len(outbox(db.factory)) == 1


def test_a_journey_can_defer_instead_of_skipping_at_the_cap(db):
    add_user(db.factory, "capped", NOW)
    activities = delivery(db)
    assert deliver(activities, request("a", "first", "sms", NOW)).status == "sent"
    later = NOW + timedelta(hours=3)
    held = request("b", "second", "sms", later)
    held.on_frequency_cap = "defer"
    result = deliver(activities, held)
    assert (result.status, result.reason) == ("deferred", "frequency_cap")
    assert result.defer_until == NOW + timedelta(days=1)  # when the first SMS leaves the window
    held.now = result.defer_until
    assert deliver(activities, held).status == "sent"


def test_a_journey_can_override_quiet_hours(db):
    add_user(db.factory, "capped", NOW)
    activities = outbox_delivery(db.factory, quiet_hours="21:00-08:00")
    night = datetime(2026, 6, 18, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    assert deliver(activities, request("a", "s1", "sms", night)).status == "deferred"
    off = request("b", "s2", "push", night)
    off.quiet_hours = "off"  # e.g. a flash-sale journey that may send at night
    assert deliver(activities, off).status == "sent"
    narrow = request("c", "s3", "push", night)
    narrow.quiet_hours = "23:30-07:00"
    assert deliver(activities, narrow).status == "sent"
