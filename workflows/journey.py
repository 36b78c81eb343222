"""``JourneyWorkflow``: one durable run of one user through one journey.

A bounded walk over the journey's steps. Waits race a durable timer against the user's
events (signals): the goal converts and ends the run, an ``exit_on`` event ends it. Every
side effect is an activity that takes ``now`` from ``workflow.now()``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from journeys.models import ExitStep, IssueCouponStep, SendStep, Step, WaitStep
    from workflows.contracts import (
        DELIVER,
        FINISH_ENROLLMENT,
        ISSUE_COUPON,
        CouponRef,
        DeliverInput,
        DeliverResult,
        EventSignal,
        FinishEnrollmentInput,
        IssueCouponInput,
        JourneyInput,
        JourneyResult,
    )

ACTIVITY_TIMEOUT = timedelta(seconds=60)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))


@workflow.defn(name="JourneyWorkflow")
class JourneyWorkflow:
    @workflow.init
    def __init__(self, inp: JourneyInput) -> None:
        self._inp = inp
        self._seen: set[str] = set()
        self._goal: EventSignal | None = None
        self._exit: EventSignal | None = None
        self._coupon: CouponRef | None = None
        self._steps_run: list[str] = []
        self._deadline = workflow.now() + (
            inp.journey.goal.within if inp.journey.goal else timedelta(0)
        )

    @workflow.signal
    def event(self, ev: EventSignal) -> None:
        """An event of this user: goal and exit events end the run; repeats are ignored."""
        if ev.message_id in self._seen:
            return
        self._seen.add(ev.message_id)
        goal = self._inp.journey.goal
        if goal and ev.event == goal.event and ev.timestamp <= self._deadline:
            self._goal = self._goal or ev
        elif ev.event in self._inp.journey.exit_on:
            self._exit = self._exit or ev

    @workflow.query
    def progress(self) -> list[str]:
        """Ids of the steps run so far."""
        return list(self._steps_run)

    def _stopped(self) -> bool:
        return self._goal is not None or self._exit is not None

    @workflow.run
    async def run(self, inp: JourneyInput) -> JourneyResult:
        reason = await self._walk(inp.journey.steps)
        if reason is None and inp.journey.goal is not None and not self._stopped():
            # Steps are done; the user can still convert until the goal window closes.
            await self._sleep(self._deadline - workflow.now())
        if reason is None:
            reason = "converted" if self._goal else "exited" if self._exit else "completed"
        await workflow.execute_activity(
            FINISH_ENROLLMENT,
            FinishEnrollmentInput(
                enrollment_id=inp.enrollment_id,
                reason=reason,
                now=workflow.now(),
                converted_at=self._goal.timestamp if self._goal else None,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return JourneyResult(
            exit_reason=reason, converted=self._goal is not None, steps=list(self._steps_run)
        )

    async def _walk(self, steps: list[Step]) -> str | None:
        """Run ``steps`` in order; the exit reason if the run ended inside them."""
        for step in steps:
            if self._goal:
                return "converted"
            if self._exit:
                return "exited"
            match step:
                case SendStep():
                    await self._send(step)
                case WaitStep():
                    await self._sleep(step.duration)
                case IssueCouponStep():
                    await self._issue_coupon(step)
                case ExitStep():
                    self._steps_run.append(step.id)
                    return "exit_step"
            self._steps_run.append(step.id)
        return None

    async def _sleep(self, duration: timedelta) -> None:
        if duration <= timedelta(0):
            return
        try:
            await workflow.wait_condition(self._stopped, timeout=duration)
        except TimeoutError:
            pass

    def _key(self, step_id: str, occurrence: int = 1) -> str:
        # First execution run id: stable across retries, replays and continue-as-new.
        return f"{workflow.info().first_execution_run_id}/{step_id}/{occurrence}"

    async def _issue_coupon(self, step: IssueCouponStep) -> None:
        self._coupon = await workflow.execute_activity(
            ISSUE_COUPON,
            IssueCouponInput(
                issue_key=self._key(step.id),
                user_id=self._inp.user_id,
                journey_id=self._inp.journey.id,
                amount_fen=int(step.amount * 100),
                min_spend_fen=int(step.min_spend * 100),
                valid_for=step.valid_for,
                now=workflow.now(),
            ),
            result_type=CouponRef,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )

    async def _send(self, step: SendStep) -> DeliverResult:
        inp = self._inp
        return await workflow.execute_activity(
            DELIVER,
            DeliverInput(
                idempotency_key=self._key(step.id),
                enrollment_id=inp.enrollment_id,
                journey_id=inp.journey.id,
                step_id=step.id,
                user_id=inp.user_id,
                channel=step.channel,
                template=step.template,
                topic=step.topic,
                group=inp.group,
                now=workflow.now(),
                trigger=inp.trigger,
                coupon_id=self._coupon.coupon_id if self._coupon else None,
            ),
            result_type=DeliverResult,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
