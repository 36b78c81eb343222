"""An instant from an event's properties can be anything: one off the calendar, or centuries
ahead, must not fail a run's workflow task forever or park it for ever."""

from __future__ import annotations

import asyncio

import pytest

from config import Settings
from journey_support import add_user, publish_text, router_for, store_event
from worker import running_worker
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow

FAR = """\
id: far_deadline
name: far deadline
trigger: {event: coupon_issued, key: coupon_code}
delivery: {quiet_hours: "off"}
steps:
  - {id: until, type: wait_until, at: trigger.properties.expires_at + 1d}
  - {id: done, type: exit}
"""


@pytest.mark.parametrize(
    "expires_at",
    ["9999-12-31T23:00:00+00:00", "2999-06-01T00:00:00+00:00"],
    ids=["off-the-calendar", "centuries-ahead"],
)
async def test_a_wait_until_an_impossible_instant_does_not_wait(
    time_env, sqlite_db, task_queue, expires_at: str
):
    env, db = time_env, sqlite_db
    user = f"far-{task_queue}"
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_text(db.factory, FAR, t0)
        add_user(db.factory, user, t0)
        props = {"coupon_code": "C-1", "amount_fen": 500, "expires_at": expires_at}
        router = router_for(env, db, task_queue)
        await router.route([store_event(db.factory, user, "coupon_issued", t0, properties=props)])
        handle = env.client.get_workflow_handle_for(
            JourneyWorkflow.run, journey_workflow_id("far_deadline", user, "C-1")
        )
        result = await asyncio.wait_for(handle.result(), timeout=30)

    assert result.exit_reason == "exit_step"
    finished = await env.get_current_time()
    assert (finished - t0).days < 1  # it did not wait for the far instant
