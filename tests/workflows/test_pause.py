"""Pausing a journey stops new entries and holds pending sends; resuming releases them."""

from __future__ import annotations

from datetime import timedelta

from config import Settings
from journey_support import (
    add_user,
    enrollments,
    ledger,
    publish_shipped,
    router_for,
    store_event,
    user_in,
)
from store.db import transaction
from store.journeys import set_status
from support import assert_eventually_async
from worker import running_worker
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow


async def test_paused_journey_holds_sends_and_admits_no_one(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    user = user_in("treatment", f"pause-{task_queue}")
    late = user_in("treatment", f"late-{task_queue}")
    router = router_for(env, db, task_queue)
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "new_user_coupon", t0)
        for u in (user, late):
            add_user(db.factory, u, t0)
        await router.route([store_event(db.factory, user, "user_signed_up", t0)])

        def welcome_sent() -> bool:
            rows = ledger(db.factory, user)
            return bool(rows) and rows[0].status == "sent"

        await assert_eventually_async(welcome_sent, timeout=5, interval=0.05)

        with transaction(db.factory) as session:
            set_status(session, journey_id="new_user_coupon", status="paused")
        await router.route([store_event(db.factory, late, "user_signed_up", t0)])
        await env.sleep(timedelta(days=2, hours=5))
        held = ledger(db.factory, user)[1]
        assert (held.step_id, held.status) == ("day2_push", "pending")  # held, not lost

        with transaction(db.factory) as session:
            set_status(session, journey_id="new_user_coupon", status="published")
        await env.sleep(timedelta(days=6))
        handle = env.client.get_workflow_handle_for(
            JourneyWorkflow.run, journey_workflow_id("new_user_coupon", user)
        )
        await handle.result()

    rows = ledger(db.factory, user)
    assert [(m.step_id, m.status) for m in rows] == [
        ("welcome_sms", "sent"),
        ("day2_push", "sent"),
        ("day6_email", "sent"),
    ]
    # Released at the first hourly re-check after the resume, not at day 2.
    assert rows[1].sent_at - rows[0].created_at > timedelta(days=2, hours=5)
    assert enrollments(db.factory, late) == []
