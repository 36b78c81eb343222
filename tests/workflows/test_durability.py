"""Durable-execution guarantees: exits, signal de-duplication, a goal during a pending send."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from channels.base import OutboundMessage, SendResult
from channels.outbox import OutboxChannel
from config import Settings
from journey_support import (
    add_user,
    enrollments,
    ledger,
    publish_shipped,
    publish_text,
    router_for,
    settled,
    store_event,
    user_in,
)
from store.outbox import SqlOutboxSink
from worker import running_worker
from workflows.contracts import EventSignal
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow


async def test_exit_event_ends_the_run_without_conversion(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    user = user_in("treatment", f"gone-{task_queue}")
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "new_user_coupon", t0)
        add_user(db.factory, user, t0)
        router = router_for(env, db, task_queue)
        await router.route([store_event(db.factory, user, "user_signed_up", t0)])
        await settled(db, user, 1)
        await env.sleep(timedelta(days=1))
        await router.route(
            [store_event(db.factory, user, "account_deleted", await env.get_current_time())]
        )
        handle = env.client.get_workflow_handle_for(
            JourneyWorkflow.run, journey_workflow_id("new_user_coupon", user)
        )
        result = await handle.result()

    assert (result.exit_reason, result.converted) == ("exited", False)
    assert [m.step_id for m in ledger(db.factory, user)] == ["welcome_sms"]
    assert enrollments(db.factory, user)[0].exit_reason == "exited"


TWO_WAITS = """\
id: two_waits
name: two waits for the same event
trigger: {event: product_viewed}
steps:
  - {id: first, type: wait_for, event: session_started, timeout: 1d}
  - id: second
    type: wait_for
    event: session_started
    timeout: 1d
    on_event: [{id: saw_two, type: exit}]
    on_timeout: [{id: saw_one, type: exit}]
"""


async def test_a_repeated_signal_counts_once(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    user = f"dup-{task_queue}"
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_text(db.factory, TWO_WAITS, t0)
        add_user(db.factory, user, t0)
        router = router_for(env, db, task_queue)
        await router.route([store_event(db.factory, user, "product_viewed", t0)])
        handle = env.client.get_workflow_handle_for(
            JourneyWorkflow.run, journey_workflow_id("two_waits", user)
        )
        visit = EventSignal(message_id="visit-1", event="session_started", timestamp=t0)
        await handle.signal(JourneyWorkflow.event, visit)
        await handle.signal(JourneyWorkflow.event, visit)  # the same event delivered twice
        await env.sleep(timedelta(days=3))
        result = await handle.result()

    assert result.steps[-1] == "saw_one"


class BlockingOutbox:
    """The outbox, but each send waits until the test lets it go (a slow provider)."""

    name = "outbox"

    def __init__(self, inner: OutboxChannel):
        self.inner = inner
        self.started = threading.Event()
        self.release = threading.Event()

    def send(self, message: OutboundMessage) -> SendResult:
        self.started.set()
        self.release.wait(timeout=30)
        return self.inner.send(message)


async def test_goal_during_a_pending_send_still_ends_the_run(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    user = user_in("treatment", f"slow-{task_queue}")
    slow = BlockingOutbox(OutboxChannel(SqlOutboxSink(db.factory)))
    channels = {"sms": slow, "email": slow, "push": slow}
    async with running_worker(
        env.client,
        Settings(environment="development"),
        db.factory,
        task_queue=task_queue,
        channels=channels,
    ):
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "new_user_coupon", t0)
        add_user(db.factory, user, t0)
        router = router_for(env, db, task_queue)
        await router.route([store_event(db.factory, user, "user_signed_up", t0)])
        await asyncio.to_thread(slow.started.wait, 20)
        # The welcome SMS is with the provider; the user orders meanwhile.
        await router.route([store_event(db.factory, user, "order_placed", t0)])
        slow.release.set()
        handle = env.client.get_workflow_handle_for(
            JourneyWorkflow.run, journey_workflow_id("new_user_coupon", user)
        )
        result = await handle.result()

    assert result.converted
    assert [(m.step_id, m.status) for m in ledger(db.factory, user)] == [("welcome_sms", "sent")]
