"""JourneyWorkflow's step interpreter on the time-skipping server, with fake activities
registered under the real activity names on a task queue of the test's own: no database, no
provider, no router. What the fakes record is what the workflow asked, at simulated times."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from journeys.models import Journey
from journeys.validate import load_journey, parse_journey, shipped_journey_files
from support import assert_eventually_async
from worker import sandbox_runner
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow
from workflows.journey_contracts import (
    FINISH_ENROLLMENT,
    IN_AUDIENCE,
    ISSUE_COUPON,
    NEXT_LOCAL_TIME,
    PREPARE_SEND,
    SEND_MESSAGE,
    AudienceCheckInput,
    CouponRef,
    DeliverInput,
    DeliverResult,
    EventSignal,
    FinishEnrollmentInput,
    IssueCouponInput,
    JourneyInput,
    JourneyResult,
    LocalTimeInput,
    channel_task_queue,
)

CHANNELS = ("sms", "push", "email")


@dataclass
class FakeActivities:
    """The journey's activities, answering as told and recording every call."""

    unreachable: set[str] = field(default_factory=set)  # channels the user has no address on
    refused: set[str] = field(default_factory=set)  # channels whose provider refuses for good
    deferred: dict[str, timedelta] = field(default_factory=dict)  # step id: held this long
    in_the_audience: bool = True
    sent: list[tuple[str, str, datetime]] = field(default_factory=list)  # (path, channel, at)
    coupons: list[str] = field(default_factory=list)
    finished: list[FinishEnrollmentInput] = field(default_factory=list)

    @activity.defn(name=PREPARE_SEND)
    async def prepare_send(self, inp: DeliverInput) -> DeliverResult:
        if inp.channel in self.unreachable:
            return DeliverResult(message_id=1, status="skipped", reason="unreachable")
        hold = self.deferred.pop(inp.step_id, None)
        if hold is not None:
            return DeliverResult(message_id=1, status="deferred", defer_until=inp.now + hold)
        return DeliverResult(message_id=1, status="ready")

    @activity.defn(name=SEND_MESSAGE)
    async def send_message(self, inp: DeliverInput) -> DeliverResult:
        if inp.channel in self.refused:
            raise ApplicationError("opted out", type="RecipientOptedOut", non_retryable=True)
        path = inp.idempotency_key.split("/", 1)[1]  # after the run id
        self.sent.append((path, inp.channel, inp.now))
        return DeliverResult(message_id=1, status="sent")

    @activity.defn(name=ISSUE_COUPON)
    async def issue_coupon(self, inp: IssueCouponInput) -> CouponRef:
        self.coupons.append(inp.issue_key)
        return CouponRef(
            coupon_id=len(self.coupons),
            code=f"C{len(self.coupons)}",
            amount_fen=inp.amount_fen,
            min_spend_fen=inp.min_spend_fen,
            expires_at=inp.now + inp.valid_for,
        )

    @activity.defn(name=FINISH_ENROLLMENT)
    async def finish_enrollment(self, inp: FinishEnrollmentInput) -> None:
        self.finished.append(inp)

    @activity.defn(name=IN_AUDIENCE)
    async def in_audience(self, inp: AudienceCheckInput) -> bool:
        return self.in_the_audience

    @activity.defn(name=NEXT_LOCAL_TIME)
    async def next_local_time(self, inp: LocalTimeInput) -> datetime:
        return inp.now + timedelta(hours=1)


@asynccontextmanager
async def journey_workers(
    env: WorkflowEnvironment, fakes: FakeActivities, task_queue: str
) -> AsyncIterator[None]:
    """The journey's worker and one provider worker per channel queue, all with the fakes."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(
                env.client,
                task_queue=task_queue,
                workflows=[JourneyWorkflow],
                activities=[
                    fakes.prepare_send,
                    fakes.issue_coupon,
                    fakes.finish_enrollment,
                    fakes.in_audience,
                    fakes.next_local_time,
                ],
                workflow_runner=sandbox_runner(),
            )
        )
        for channel in CHANNELS:
            await stack.enter_async_context(
                Worker(
                    env.client,
                    task_queue=channel_task_queue(task_queue, channel),
                    activities=[fakes.send_message],
                )
            )
        yield


async def start(
    env: WorkflowEnvironment, journey: Journey, task_queue: str
) -> tuple[datetime, WorkflowHandle[JourneyWorkflow, JourneyResult]]:
    t0 = await env.get_current_time()
    assert journey.trigger.event is not None
    trigger = EventSignal(message_id="m-trigger", event=journey.trigger.event, timestamp=t0)
    handle = await env.client.start_workflow(
        JourneyWorkflow.run,
        JourneyInput(
            journey=journey,
            journey_version=1,
            enrollment_id=7,
            user_id="u-1",
            group="treatment",
            trigger=trigger,
        ),
        id=journey_workflow_id(journey.id, task_queue),
        task_queue=task_queue,
    )
    return t0, handle


def shipped(journey_id: str) -> Journey:
    return load_journey(next(p for p in shipped_journey_files() if p.stem == journey_id))


def since(t0: datetime, at: datetime) -> timedelta:
    """Simulated time from ``t0`` to ``at``, to the minute: the test server's clock also
    moves at real pace between the instants it skips to."""
    return timedelta(minutes=round((at - t0) / timedelta(minutes=1)))


def offsets(fakes: FakeActivities, t0: datetime) -> list[tuple[str, str, timedelta]]:
    return [(path, channel, since(t0, at)) for path, channel, at in fakes.sent]


async def test_the_new_user_journey_sends_each_step_at_its_simulated_time(time_env, task_queue):
    fakes = FakeActivities()
    async with journey_workers(time_env, fakes, task_queue):
        t0, handle = await start(time_env, shipped("new_user_coupon"), task_queue)
        result = await handle.result()

    assert (result.exit_reason, result.converted) == ("completed", False)
    assert result.steps == [
        "welcome_coupon",
        "welcome_sms",
        "wait_day2",
        "day2_push",
        "wait_day6",
        "day6_email",
    ]
    assert offsets(fakes, t0) == [
        ("welcome_sms/1", "sms", timedelta(0)),
        ("day2_push/1", "push", timedelta(days=2)),
        ("day6_email/1", "email", timedelta(days=6)),
    ]
    assert [key.split("/", 1)[1] for key in fakes.coupons] == ["welcome_coupon/1"]
    # The run stays open for a conversion until the 7-day goal window closes.
    ((finish),) = fakes.finished
    assert (finish.enrollment_id, finish.reason, finish.converted_at) == (7, "completed", None)
    assert since(t0, finish.now) == timedelta(days=7)


async def test_the_goal_converts_the_run_before_its_next_send(time_env, task_queue):
    fakes = FakeActivities()
    async with journey_workers(time_env, fakes, task_queue):
        t0, handle = await start(time_env, shipped("new_user_coupon"), task_queue)
        await assert_eventually_async(lambda: fakes.sent, timeout=20, message="the welcome SMS")
        await time_env.sleep(timedelta(days=3))
        ordered = EventSignal(message_id="m-order", event="order_placed", timestamp=t0)
        await handle.signal(JourneyWorkflow.event, ordered)
        result = await handle.result()

    assert (result.exit_reason, result.converted) == ("converted", True)
    assert [path for path, _, _ in fakes.sent] == ["welcome_sms/1", "day2_push/1"]
    ((finish),) = fakes.finished
    assert (finish.reason, finish.converted_at) == ("converted", t0)


BRANCHES = """\
id: fake_branches
name: fallback, refusal and branch
trigger: {event: product_viewed}
steps:
  - id: hello
    type: send
    channel: sms
    template: hello_sms
    fallback: email
    fallback_template: hello_email
  - id: vip
    type: branch
    if: {audience: {tier: gold}}
    then:
      - {id: vip_push, type: send, channel: push, template: vip_push}
    else:
      - {id: plain_email, type: send, channel: email, template: plain_email}
  - {id: last, type: send, channel: push, template: last_push}
"""


async def test_an_unreachable_channel_falls_back_and_the_branch_asks_the_audience(
    time_env, task_queue
):
    fakes = FakeActivities(unreachable={"sms"}, in_the_audience=False)
    async with journey_workers(time_env, fakes, task_queue):
        _, handle = await start(time_env, parse_journey(BRANCHES), task_queue)
        result = await handle.result()

    assert result.exit_reason == "completed"
    assert [(path, channel) for path, channel, _ in fakes.sent] == [
        ("hello.fallback/1", "email"),
        ("plain_email/1", "email"),
        ("last/1", "push"),
    ]
    assert result.steps == ["hello", "vip", "plain_email", "last"]


async def test_a_permanent_refusal_ends_that_send_and_the_journey_goes_on(time_env, task_queue):
    fakes = FakeActivities(refused={"sms"})
    async with journey_workers(time_env, fakes, task_queue):
        _, handle = await start(time_env, parse_journey(BRANCHES), task_queue)
        result = await handle.result()

    assert result.exit_reason == "completed"
    # A refusal is no unreachable address: no fallback; the audience's branch is taken.
    assert [(path, channel) for path, channel, _ in fakes.sent] == [
        ("vip_push/1", "push"),
        ("last/1", "push"),
    ]


async def test_a_deferred_send_is_asked_again_at_the_instant_given(time_env, task_queue):
    fakes = FakeActivities(deferred={"welcome_sms": timedelta(hours=9)})
    async with journey_workers(time_env, fakes, task_queue):
        t0, handle = await start(time_env, shipped("new_user_coupon"), task_queue)
        result = await handle.result()

    assert result.exit_reason == "completed"
    # Held 9 hours (quiet hours, a paused journey): the same send, its key unchanged.
    assert offsets(fakes, t0)[0] == ("welcome_sms/1", "sms", timedelta(hours=9))
    assert [path for path, _, _ in fakes.sent] == ["welcome_sms/1", "day2_push/1", "day6_email/1"]
