"""The baseline of ``bench/journeys.py``: a bare workflow per user running the activities a
new user's journey runs up to the welcome SMS, each one small INSERT.

Three activities in a row, as ``new_user_coupon`` runs them (the coupon, the send's policy,
the provider call), the last left out for a held-out user as the journey leaves it out;
then a two-day timer, so the run stays open like a journey's. As the journey's coupon starts
a ``coupon_expiry`` run, the coupon activity starts a second bare workflow that waits on a
timer. Workflow code only: the activities live with the worker that registers them
(``bench/journeys.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

BARE_WORKFLOW = "BareSignupWorkflow"
BARE_EXPIRY = "BareExpiryWorkflow"
STEPS = ("issue_coupon", "prepare_send", "send_message")
TIMEOUT = timedelta(seconds=30)


@dataclass
class BareStep:
    user_id: str
    step: str
    final: bool  # the step after which the welcome SMS is decided


@dataclass
class BareSignup:
    user_id: str
    held_out: bool


@workflow.defn(name=BARE_WORKFLOW)
class BareSignupWorkflow:
    @workflow.run
    async def run(self, inp: BareSignup) -> None:
        steps = STEPS[:2] if inp.held_out else STEPS
        for step in steps:
            await workflow.execute_activity(
                step,
                BareStep(inp.user_id, step, final=step == steps[-1]),
                start_to_close_timeout=TIMEOUT,
            )
        await workflow.sleep(timedelta(days=2))


@workflow.defn(name=BARE_EXPIRY)
class BareExpiryWorkflow:
    """What a coupon's expiry run does at first: wait on a timer."""

    @workflow.run
    async def run(self, user_id: str) -> None:
        await workflow.sleep(timedelta(days=5))
