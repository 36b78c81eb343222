"""The 7-day new-user coupon journey on the time-skipping server, through the real router."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from channels.base import OutboundMessage, PermanentSendError, SendResult
from channels.outbox import OutboxChannel
from config import Settings
from journey_support import (
    add_user,
    enrollments,
    ledger,
    outbox,
    publish_shipped,
    router_for,
    settled,
    store_event,
    user_in,
)
from store.outbox import SqlOutboxSink
from worker import running_worker
from workflows.contracts import JourneyResult
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow

JOURNEY = "new_user_coupon"


def settings() -> Settings:
    return Settings(environment="development")


async def result_of(env: WorkflowEnvironment, handle: WorkflowHandle) -> JourneyResult:
    return await handle.result()


async def enter(env, db, task_queue: str, user_id: str, **user_fields):
    now = await env.get_current_time()
    publish_shipped(db.factory, JOURNEY, now)
    add_user(db.factory, user_id, now, **user_fields)
    event_id = store_event(db.factory, user_id, "user_signed_up", now)
    await router_for(env, db, task_queue).route([event_id])
    handle = env.client.get_workflow_handle_for(
        JourneyWorkflow.run, journey_workflow_id(JOURNEY, user_id)
    )
    return now, handle, event_id


async def test_sends_at_exact_simulated_times_then_completes(time_env, db, task_queue):
    user = user_in("treatment", f"u-complete-{task_queue}")
    async with running_worker(time_env.client, settings(), db.factory, task_queue=task_queue):
        t0, handle, _ = await enter(time_env, db, task_queue, user)
        await settled(db, user, 1)
        await time_env.sleep(timedelta(days=8))
        result = await result_of(time_env, handle)

    assert result.exit_reason == "completed" and not result.converted
    rows = ledger(db.factory, user)
    assert [(r.step_id, r.channel, r.status) for r in rows] == [
        ("welcome_sms", "sms", "sent"),
        ("day2_push", "push", "sent"),
        ("day6_email", "email", "sent"),
    ]
    start = rows[0].created_at
    assert abs(start - t0) < timedelta(seconds=5)
    assert abs(rows[1].created_at - start - timedelta(days=2)) < timedelta(seconds=5)
    assert abs(rows[2].created_at - start - timedelta(days=6)) < timedelta(seconds=5)
    (enrollment,) = enrollments(db.factory, user)
    assert enrollment.exit_reason == "completed" and enrollment.converted_at is None
    # The run stays open for conversions until the 7-day goal window closes.
    assert abs(enrollment.exited_at - start - timedelta(days=7)) < timedelta(seconds=5)
    sms = next(m for m in outbox(db.factory) if m.channel == "sms")
    assert sms.recipient == "+8613800138000" and "回T退订" in sms.body


async def test_order_on_day3_converts_and_skips_day6_email(time_env, sqlite_db, task_queue):
    db = sqlite_db
    user = user_in("treatment", f"u-buyer-{task_queue}")
    async with running_worker(time_env.client, settings(), db.factory, task_queue=task_queue):
        t0, handle, _ = await enter(time_env, db, task_queue, user)
        await settled(db, user, 1)
        await time_env.sleep(timedelta(days=3))
        ordered_at = await time_env.get_current_time()
        order = store_event(db.factory, user, "order_placed", ordered_at)
        await router_for(time_env, db, task_queue).route([order])
        result = await result_of(time_env, handle)

    assert result.converted and result.exit_reason == "converted"
    assert [r.step_id for r in ledger(db.factory, user)] == [
        "welcome_sms",
        "day2_push",
    ]
    (enrollment,) = enrollments(db.factory, user)
    assert enrollment.exit_reason == "converted"
    assert abs(enrollment.converted_at - ordered_at) < timedelta(seconds=5)


async def test_same_signup_twice_starts_one_run(time_env, sqlite_db, task_queue):
    db = sqlite_db
    user = user_in("treatment", f"u-twice-{task_queue}")
    async with running_worker(time_env.client, settings(), db.factory, task_queue=task_queue):
        t0, handle, first_event = await enter(time_env, db, task_queue, user)
        router = router_for(time_env, db, task_queue)
        # The same stored event routed again, and a second signup event for the same user.
        await router.route([first_event])
        again = store_event(db.factory, user, "user_signed_up", t0)
        await router.route([again])
        await settled(db, user, 1)
        await time_env.sleep(timedelta(days=8))
        await result_of(time_env, handle)

    assert len(enrollments(db.factory, user)) == 1
    assert [r.step_id for r in ledger(db.factory, user)].count("welcome_sms") == 1
    assert [m.channel for m in outbox(db.factory)].count("sms") == 1


class CrashAfterProviderAccepted:
    """The outbox, but the first send dies after the message was recorded (a worker crash
    between the provider accepting and the ledger update)."""

    name = "outbox"

    def __init__(self, inner: OutboxChannel):
        self.inner = inner
        self.attempts = 0

    def send(self, message: OutboundMessage) -> SendResult:
        self.attempts += 1
        result = self.inner.send(message)
        if self.attempts == 1:
            raise RuntimeError("worker died after the provider accepted")
        return result


async def test_retried_deliver_sends_once(time_env, sqlite_db, task_queue):
    db = sqlite_db
    user = user_in("treatment", f"u-retry-{task_queue}")
    flaky = CrashAfterProviderAccepted(OutboxChannel(SqlOutboxSink(db.factory)))
    channels = {"sms": flaky, "email": flaky, "push": flaky}
    async with running_worker(
        time_env.client, settings(), db.factory, task_queue=task_queue, channels=channels
    ):
        _, handle, _ = await enter(time_env, db, task_queue, user)
        await settled(db, user, 1)
        await time_env.sleep(timedelta(days=8))
        await result_of(time_env, handle)

    assert flaky.attempts == 4  # welcome SMS twice (crash + retry), push, email
    rows = ledger(db.factory, user)
    assert [r.status for r in rows] == ["sent", "sent", "sent"]
    assert [m.channel for m in outbox(db.factory)] == ["sms", "push", "email"]


async def test_holdout_runs_but_receives_nothing(time_env, sqlite_db, task_queue):
    db = sqlite_db
    user = user_in("holdout", f"u-held-{task_queue}")
    async with running_worker(time_env.client, settings(), db.factory, task_queue=task_queue):
        _, handle, _ = await enter(time_env, db, task_queue, user)
        await settled(db, user, 1)
        await time_env.sleep(timedelta(days=8))
        await result_of(time_env, handle)

    assert {(r.status, r.reason) for r in ledger(db.factory, user)} == {("skipped", "held_out")}
    assert outbox(db.factory) == []
    assert enrollments(db.factory, user)[0].group == "holdout"


async def test_unreachable_user_is_skipped_with_reason(time_env, sqlite_db, task_queue):
    db = sqlite_db
    user = user_in("treatment", f"u-nophone-{task_queue}")
    async with running_worker(time_env.client, settings(), db.factory, task_queue=task_queue):
        _, handle, _ = await enter(time_env, db, task_queue, user, phone=None)
        await settled(db, user, 1)
        await time_env.sleep(timedelta(days=8))
        await result_of(time_env, handle)

    rows = ledger(db.factory, user)
    assert (rows[0].step_id, rows[0].status, rows[0].reason) == (
        "welcome_sms",
        "skipped",
        "unreachable",
    )
    assert [r.status for r in rows[1:]] == ["sent", "sent"]


class RefusingSms:
    """A provider that refuses every SMS for good (an invalid number)."""

    name = "refusing"

    def send(self, message: OutboundMessage) -> SendResult:
        raise PermanentSendError("invalid_number", "21211")


async def test_permanent_refusal_is_recorded_and_the_journey_goes_on(
    time_env, sqlite_db, task_queue
):
    db = sqlite_db
    user = user_in("treatment", f"u-refused-{task_queue}")
    outbox_channel = OutboxChannel(SqlOutboxSink(db.factory))
    channels = {"sms": RefusingSms(), "email": outbox_channel, "push": outbox_channel}
    async with running_worker(
        time_env.client, settings(), db.factory, task_queue=task_queue, channels=channels
    ):
        _, handle, _ = await enter(time_env, db, task_queue, user)
        await settled(db, user, 1)
        await time_env.sleep(timedelta(days=8))
        result = await result_of(time_env, handle)

    assert result.exit_reason == "completed"
    rows = ledger(db.factory, user)
    assert [(r.step_id, r.status, r.reason) for r in rows] == [
        ("welcome_sms", "failed", "invalid_number"),
        ("day2_push", "sent", None),
        ("day6_email", "sent", None),
    ]
