"""``JourneyWorkflow``: one durable run of one user through one journey.

A bounded walk over the journey's steps (``match`` on the step type). Waits race a durable
timer against the user's events (signals): the goal converts and ends the run, an ``exit_on``
event ends it, a repeated trigger of a ``restart`` journey starts the steps over; a person can
end it too (``eject``). Every side effect is an activity that takes ``now`` from
``workflow.now()``. A control run (the journey's holdout, the global control group) walks
the same steps, its coupons withheld and its marketing sends skipped by the policy. Where
the run is (step, what it waits for, until when) is plain state, asked with the
``position`` query; keeping it adds no command, so recorded histories replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar, assert_never

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from journeys.conditions import compare
    from journeys.models import (
        AudienceCondition,
        BranchStep,
        ExitStep,
        IssueCouponStep,
        SendStep,
        Step,
        WaitForStep,
        WaitStep,
        WaitUntilStep,
    )
    from workflows.history import (
        ACTIVITY_TIMEOUT,
        LOCAL_ACTIVITIES,
        RETRY,
        SEND_TIMEOUT,
        WITHHOLD_CONTROL_COUPONS,
    )
    from workflows.journey_context import (
        Meaning,
        arrival,
        chosen_variant,
        context_value,
        control_reason,
        meaning,
        wait_target,
        withheld_coupon,
    )
    from workflows.journey_contracts import (
        AudienceCheckInput,
        CouponRef,
        DeliverInput,
        DeliverResult,
        EjectSignal,
        EventSignal,
        FinishEnrollmentInput,
        IssueCouponInput,
        JourneyCalls,
        JourneyCarry,
        JourneyInput,
        JourneyResult,
        LocalTimeInput,
        RunPosition,
        Waiting,
        channel_task_queue,
    )

In = TypeVar("In")
Out = TypeVar("Out")
RESTART = "restart"
# A held send given up because the run ended: the ledger's reason, by why the run ended.
ABANDONED = {"converted": "goal_reached", "ejected": "ejected", "exited": "exited"}


@workflow.defn(name="JourneyWorkflow")
class JourneyWorkflow:
    @workflow.init
    def __init__(self, inp: JourneyInput) -> None:
        self._inp = inp
        self._trigger = inp.trigger
        self._seen: set[str] = set()
        self._events: list[EventSignal] = []
        self._consumed: set[str] = {inp.trigger.message_id}
        self._goal: EventSignal | None = None
        self._exit: EventSignal | None = None
        self._ejected: EjectSignal | None = None
        self._ejected_at_step = ""
        self._position = RunPosition()
        self._restart: EventSignal | None = None
        self._coupon: CouponRef | None = None
        self._steps_run: list[str] = []
        self._withheld: dict[str, str] = {}
        self._occurrences: dict[str, int] = {}
        self._deadline = self._goal_deadline()
        if inp.carry is not None:  # continued as new after a restart
            self._seen = set(inp.carry.seen)
            self._occurrences = dict(inp.carry.occurrences)
            self._steps_run = list(inp.carry.steps_run)
            self._withheld = dict(inp.carry.withheld)
            self._coupon = inp.carry.coupon
            self._deadline = inp.carry.deadline

    def _goal_deadline(self) -> datetime:
        goal = self._inp.journey.goal
        return workflow.now() + (goal.within if goal else timedelta(0))

    @workflow.signal
    def event(self, ev: EventSignal) -> None:
        """An event of this user; goal and exit events end the run; repeats are ignored."""
        if ev.message_id in self._seen:
            return
        self._seen.add(ev.message_id)
        means = meaning(
            self._inp.journey,
            ev,
            entry_key=self._inp.entry_key,
            deadline=self._deadline,
            trigger_id=self._trigger.message_id,
        )
        if means == Meaning.OTHER_ENTRY:
            return  # another cart's event: not this run's business
        if means == Meaning.GOAL:
            self._goal = self._goal or ev
        elif means == Meaning.EXIT:
            self._exit = self._exit or ev
        elif means == Meaning.RESTART:
            self._restart = ev
        self._events.append(ev)

    @workflow.signal
    def eject(self, sig: EjectSignal) -> None:
        """A person ends the run: it leaves at once, as for an exit event, sending nothing
        more (a held send is given up); the finishing activity records ``ejected``."""
        if self._ejected is None:
            self._ejected, self._ejected_at_step = sig, self._position.step

    @workflow.query
    def progress(self) -> list[str]:
        """Ids of the steps run so far."""
        return list(self._steps_run)

    @workflow.query
    def position(self) -> RunPosition:
        """The step the run is in, what it waits for there and until when."""
        return replace(self._position)

    def _left(self) -> str | None:
        """Why the run ends early, if it does: converted, ejected or exited."""
        if self._goal is not None:
            return "converted"
        if self._ejected is not None:
            return "ejected"
        return "exited" if self._exit is not None else None

    def _ended(self) -> bool:
        return self._left() is not None

    def _interrupted(self) -> bool:
        return self._ended() or self._restart is not None

    @workflow.run
    async def run(self, inp: JourneyInput) -> JourneyResult:
        while True:
            reason = await self._walk(inp.journey.steps)
            if reason is None and inp.journey.goal is not None and not self._interrupted():
                # Steps are done; the user can still convert until the goal window closes.
                self._position = RunPosition(since=workflow.now())
                await self._sleep(self._deadline - workflow.now(), Waiting.GOAL)
            if reason not in (None, RESTART) or self._ended() or self._restart is None:
                break
            # A newer trigger (e.g. the cart changed): start the steps over from it.
            self._trigger, self._restart = self._restart, None
            self._consumed.update(e.message_id for e in self._events)
            self._deadline = self._goal_deadline()
            if workflow.info().get_current_history_length() >= inp.history_limit:
                await self._continue_as_new(inp)
        if reason is None or reason == RESTART:
            reason = self._left() or "completed"
        await self._activity(
            JourneyCalls.finish_enrollment,
            FinishEnrollmentInput(
                enrollment_id=inp.enrollment_id,
                reason=reason,
                now=workflow.now(),
                converted_at=self._goal.timestamp if self._goal else None,
                ejected=self._ejected if reason == "ejected" else None,
                ejected_at_step=self._ejected_at_step,
            ),
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return JourneyResult(
            exit_reason=reason,
            converted=self._goal is not None,
            steps=list(self._steps_run),
            withheld=dict(self._withheld),
        )

    async def _continue_as_new(self, inp: JourneyInput) -> None:
        """Go on from the newer trigger in a new run with a short history. Every event heard
        so far is consumed by the restart; the ledger keys go on from the same counts."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._interrupted():  # an event came meanwhile: this run handles it
            return
        workflow.continue_as_new(
            replace(
                inp,
                trigger=self._trigger,
                carry=JourneyCarry(
                    seen=sorted(self._seen),
                    occurrences=dict(self._occurrences),
                    steps_run=list(self._steps_run),
                    coupon=self._coupon,
                    deadline=self._deadline,
                    withheld=dict(self._withheld),
                ),
            )
        )

    async def _walk(self, steps: list[Step]) -> str | None:
        """Run ``steps`` in order; the exit reason (or RESTART) if the run left them early."""
        for step in steps:
            left = self._left()
            if left is not None:
                return left
            if self._restart:
                return RESTART
            self._steps_run.append(step.id)
            self._position = RunPosition(step=step.id, since=workflow.now())
            nested: list[Step] = []
            match step:
                case SendStep():
                    await self._send(step)
                case WaitStep():
                    await self._sleep(step.duration)
                case WaitUntilStep():
                    await self._wait_until(step)
                case WaitForStep():
                    nested = await self._wait_for(step)
                case BranchStep():
                    nested = step.then if await self._holds(step) else step.else_
                case IssueCouponStep():
                    await self._issue_coupon(step)
                case ExitStep():
                    return "exit_step"
                case _:
                    assert_never(step)
            if nested:
                reason = await self._walk(nested)
                if reason is not None:
                    return reason
        return None

    async def _sleep(self, duration: timedelta, waiting: str = Waiting.TIMER) -> bool:
        """Sleep up to ``duration``; True if the goal, an exit or a restart cut it short."""
        if duration <= timedelta(0):
            return False
        return await self._race(self._interrupted, duration, waiting)

    async def _race(
        self, done: Callable[[], bool], timeout: timedelta, waiting: str, event: str = ""
    ) -> bool:
        """Wait until ``done()`` (True) or ``timeout`` (False); the run's position says what
        it waits for meanwhile."""
        self._position = replace(
            self._position, waiting=waiting, event=event, until=workflow.now() + timeout
        )
        try:
            await workflow.wait_condition(done, timeout=timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._position = replace(self._position, waiting="", event="", until=None)

    def _key(self, step_id: str) -> str:
        # First execution run id: stable across retries, replays and continue-as-new; the
        # occurrence tells a restarted run's second pass from its first.
        occurrence = self._occurrences.get(step_id, 0) + 1
        self._occurrences[step_id] = occurrence
        return f"{workflow.info().first_execution_run_id}/{step_id}/{occurrence}"

    async def _activity(
        self,
        method: Callable[[JourneyCalls, In], Out],
        arg: In,
        task_queue: str | None = None,
        timeout: timedelta = ACTIVITY_TIMEOUT,
        *,
        local: bool = False,
    ) -> Out:
        if local and workflow.patched(LOCAL_ACTIVITIES):
            return await workflow.execute_local_activity_method(
                method, arg, start_to_close_timeout=timeout, retry_policy=RETRY
            )
        return await workflow.execute_activity_method(
            method,
            arg,
            task_queue=task_queue,
            start_to_close_timeout=timeout,
            retry_policy=RETRY,
        )

    async def _issue_coupon(self, step: IssueCouponStep) -> None:
        issue = IssueCouponInput(
            issue_key=self._key(step.id),
            user_id=self._inp.user_id,
            journey_id=self._inp.journey.id,
            amount_fen=int(step.amount * 100),
            min_spend_fen=int(step.min_spend * 100),
            valid_for=step.valid_for,
            now=workflow.now(),
        )
        why = control_reason(self._inp)
        # Asked only of control runs, so an exposed run's history stays as it was.
        if why and workflow.patched(WITHHOLD_CONTROL_COUPONS):
            self._withheld[step.id] = why
            self._coupon = withheld_coupon(issue, why)
            return
        self._coupon = await self._activity(JourneyCalls.issue_coupon, issue, local=True)

    async def _send(self, step: SendStep) -> DeliverResult:
        template, variant = chosen_variant(self._inp.journey.id, self._inp.user_id, step)
        result = await self._deliver(step, step.id, step.channel, template, variant)
        if result.status == "skipped" and result.reason == "unreachable" and step.fallback:
            assert step.fallback_template is not None
            result = await self._deliver(
                step, f"{step.id}.fallback", step.fallback, step.fallback_template, variant
            )
        return result

    async def _deliver(
        self, step: SendStep, path: str, channel: str, template: str, variant: str | None
    ) -> DeliverResult:
        """One send, asked again after every deferral (a paused journey, quiet hours) until
        it is decided; given up, with the reason recorded, if the run's reason to send passes
        while it waits."""
        inp = self._inp
        request = DeliverInput(
            idempotency_key=self._key(path),
            enrollment_id=inp.enrollment_id,
            journey_id=inp.journey.id,
            step_id=step.id,
            user_id=inp.user_id,
            channel=channel,
            template=template,
            topic=step.topic,
            group=inp.group,
            now=workflow.now(),
            trigger=self._trigger,
            coupon_id=self._coupon.issued_id if self._coupon else None,
            variant=variant,
            quiet_hours=inp.journey.delivery.quiet_hours,
            on_frequency_cap=inp.journey.delivery.on_frequency_cap,
        )
        while True:
            try:
                result = await self._activity(JourneyCalls.prepare_send, request, local=True)
                if result.status == "ready":  # the provider call, on the channel's queue
                    queue = channel_task_queue(workflow.info().task_queue, channel)
                    result = await self._activity(
                        JourneyCalls.send_message, request, queue, SEND_TIMEOUT
                    )
            except ActivityError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.non_retryable):
                    raise
                # A permanent refusal (bad number, opted out, dead token) is recorded in the
                # ledger by the activity; the journey goes on.
                return DeliverResult(message_id=0, status="failed", reason=cause.type)
            if result.status != "deferred" or result.defer_until is None:
                return result
            await self._sleep(result.defer_until - workflow.now(), Waiting.SEND)
            request.now = workflow.now()
            if self._interrupted():
                request.abandon = ABANDONED.get(self._left() or "", "restarted")

    async def _holds(self, step: BranchStep) -> bool:
        condition = step.if_
        if isinstance(condition, AudienceCondition):
            return await self._activity(
                JourneyCalls.in_audience,
                AudienceCheckInput(
                    user_id=self._inp.user_id, rule=condition.audience, now=workflow.now()
                ),
            )
        value = context_value(condition.context, self._trigger, self._coupon)
        return compare(value, condition.op, condition.value)

    async def _wait_until(self, step: WaitUntilStep) -> None:
        if step.local_time is not None:
            target = await self._activity(
                JourneyCalls.next_local_time,
                LocalTimeInput(
                    user_id=self._inp.user_id, hh_mm=step.local_time, now=workflow.now()
                ),
            )
        else:
            instant, why = wait_target(step, self._trigger, self._coupon, workflow.now())
            if instant is None:
                workflow.logger.warning("step %s: %s; not waiting", step.id, why)
                return
            target = instant
        await self._sleep(target - workflow.now())

    async def _wait_for(self, step: WaitForStep) -> list[Step]:
        """Wait for the event (one that already arrived counts); the branch to take."""
        found: list[EventSignal] = []

        def arrived_or_interrupted() -> bool:
            ev = arrival(self._events, self._consumed, step)
            if ev is not None:
                found.append(ev)
            return ev is not None or self._interrupted()

        if not await self._race(arrived_or_interrupted, step.timeout, Waiting.EVENT, step.event):
            return step.on_timeout
        if found:
            self._consumed.add(found[0].message_id)
            return step.on_event
        return []  # interrupted: _walk sees why and leaves
