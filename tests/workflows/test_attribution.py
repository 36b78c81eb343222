"""One order, several journeys: every run stops, the first journey to reach the user gets the
credit, and the holdout still converts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.console import Console

from config import Settings
from devstack.views import print_report
from journey_support import (
    add_user,
    enrollments,
    ledger,
    publish_text,
    router_for,
    store_event,
    user_in,
)
from store.db import transaction
from store.models import Enrollment, Message
from store.reports import journey_report, user_timeline
from worker import running_worker
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow

# Entered first, but waits a day before its push.
BROWSE_NUDGE = """\
id: browse_nudge
name: browse nudge
trigger: {event: product_viewed}
goal: {event: order_placed, within: 7d}
delivery: {quiet_hours: "off"}
steps:
  - {id: wait_1d, type: wait, duration: 1d}
  - {id: nudge, type: send, channel: push, template: cart_reminder_push}
  - {id: wait_3d, type: wait, duration: 3d}
"""
# Entered two hours later, and pushes at once: the user's first touch.
CART_RESCUE = """\
id: cart_rescue
name: cart rescue
trigger: {event: cart_updated}
goal: {event: order_placed, within: 7d}
delivery: {quiet_hours: "off"}
steps:
  - {id: rescue, type: send, channel: push, template: cart_reminder_push}
  - {id: wait_3d, type: wait, duration: 3d}
"""
# Half held out; this user is in the holdout, so nothing is sent.
BROWSE_CONTROL = """\
id: browse_control
name: browse control
trigger: {event: product_viewed}
goal: {event: order_placed, within: 7d}
holdout: 50
delivery: {quiet_hours: "off"}
steps:
  - {id: hello, type: send, channel: push, template: cart_reminder_push}
  - {id: wait_3d, type: wait, duration: 3d}
"""
JOURNEYS = ("browse_nudge", "cart_rescue", "browse_control")


async def test_one_order_is_credited_to_the_journey_that_touched_the_user_first(
    time_env, db, task_queue
):
    env = time_env
    user = user_in("holdout", f"shopper-{task_queue}", journey_id="browse_control", percent=50)
    router = router_for(env, db, task_queue)
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        for text in (BROWSE_NUDGE, CART_RESCUE, BROWSE_CONTROL):
            publish_text(db.factory, text, t0)
        add_user(db.factory, user, t0)
        await router.route([store_event(db.factory, user, "product_viewed", t0)])
        await env.sleep(timedelta(hours=2))
        cart = {"cart_id": "cart_1", "items": [{"name": "纸尿裤"}]}
        at = await env.get_current_time()
        await router.route([store_event(db.factory, user, "cart_updated", at, properties=cart)])
        await env.sleep(timedelta(days=2))
        ordered_at = await env.get_current_time()
        await router.route([store_event(db.factory, user, "order_placed", ordered_at)])
        results = {}
        for journey in JOURNEYS:
            handle = env.client.get_workflow_handle_for(
                JourneyWorkflow.run, journey_workflow_id(journey, user)
            )
            results[journey] = await handle.result()

    # The order stops every journey whose goal it is.
    assert {j: (r.exit_reason, r.converted) for j, r in results.items()} == {
        j: ("converted", True) for j in JOURNEYS
    }
    sends = {m.journey_id: (m.status, m.sent_at) for m in ledger(db.factory, user)}
    assert sends["browse_control"][0] == "skipped"  # held out
    assert sends["cart_rescue"][1] < sends["browse_nudge"][1] < ordered_at
    assert {e.journey_id: e.group for e in enrollments(db.factory, user)}["browse_control"] == (
        "holdout"
    )

    with db.factory() as session:
        reports = {j: journey_report(session, journey_id=j) for j in JOURNEYS}
        timeline = user_timeline(session, user_id=user)

    # Credit: the journey that reached the user first, though it was entered later.
    assert (reports["cart_rescue"].credited, reports["cart_rescue"].credited_elsewhere) == (1, 0)
    assert (reports["browse_nudge"].credited, reports["browse_nudge"].credited_elsewhere) == (
        0,
        1,
    )
    # The goal was reached in every journey: the lift compares like with like, and the
    # holdout (the control) converts whatever journey is credited.
    assert reports["browse_nudge"].converted == {"treatment": 1}
    assert reports["browse_control"].converted == {"holdout": 1}
    assert reports["browse_control"].rate("holdout") == 1.0
    # The terminal report says so too.
    console = Console(record=True, width=120)
    print_report(reports["browse_nudge"], console)
    assert (
        "credit (first touch): 0 of the treatment's conversions here, 1 to a journey that "
        "reached the user first" in console.export_text()
    )
    exits = [entry.text for entry in timeline if entry.kind == "exit"]
    assert sorted(exits) == [
        "exited browse_control: converted",
        "exited browse_nudge: converted (credited to cart_rescue: it reached the user first)",
        "exited cart_rescue: converted",
    ]


def test_first_touch_rules_on_both_databases(db):
    """Touches after the order do not count; untouched journeys lose to a touched one, and
    among untouched ones the first entered wins; a journey alone keeps its conversion."""
    t0 = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
    order = t0 + timedelta(days=2)
    add_user(db.factory, "u1", t0)
    with transaction(db.factory) as session:

        def enrolled(journey: str, entered: timedelta, converted_at: datetime | None) -> int:
            row = Enrollment(
                journey_id=journey,
                journey_version=1,
                user_id="u1",
                group="treatment",
                workflow_id=journey_workflow_id(journey, "u1"),
                entered_at=t0 + entered,
                converted_at=converted_at,
            )
            session.add(row)
            session.flush()
            return row.id

        def touched(enrollment_id: int, journey: str, at: datetime, status: str = "sent") -> None:
            session.add(
                Message(
                    idempotency_key=f"{journey}/{at.isoformat()}",
                    enrollment_id=enrollment_id,
                    journey_id=journey,
                    step_id="s",
                    user_id="u1",
                    channel="push",
                    template="t",
                    status=status,
                    created_at=at,
                    sent_at=at,
                )
            )

        # One order: "late" touched the user after it, "failed" never reached them, so
        # "touched" (entered last) is credited.
        early = enrolled("early", timedelta(0), order)
        touched(enrolled("late", timedelta(hours=1), order), "late", order + timedelta(hours=1))
        touched(enrolled("failed", timedelta(hours=2), order), "failed", t0, status="failed")
        touched(enrolled("touched", timedelta(hours=3), order), "touched", t0 + timedelta(days=1))
        touched(early, "early", order + timedelta(minutes=5))
        # Another order, a week on: two untouched journeys, the first entered is credited.
        later = order + timedelta(days=7)
        enrolled("first_in", timedelta(days=6), later)
        enrolled("second_in", timedelta(days=6, hours=1), later)
        # A journey alone with its conversion keeps it, touched or not.
        enrolled("alone", timedelta(days=20), order + timedelta(days=21))

    with db.factory() as session:
        credit = {
            j: (r.credited, r.credited_elsewhere)
            for j in ("early", "late", "failed", "touched", "first_in", "second_in", "alone")
            for r in [journey_report(session, journey_id=j)]
        }
    assert credit == {
        "early": (0, 1),
        "late": (0, 1),
        "failed": (0, 1),
        "touched": (1, 0),
        "first_in": (1, 0),
        "second_in": (0, 1),
        "alone": (1, 0),
    }
