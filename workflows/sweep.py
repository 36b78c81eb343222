"""``SweepWorkflow``: one scheduled tick of a schedule-triggered journey.

Pages through the journey's audience as it stood at the tick (keyset, about 1,000 users per
page) in a heartbeating activity that enrolls each page and starts its runs, carries the
cursor from page to page, and continues-as-new every few pages so its history stays small
whatever the audience's size. The workflow id ``sweep:{journey}:{tick}`` and the
``sweep_ticks`` row make a tick's sweep unique; the enrollment rows make every page
idempotent, so a sweep interrupted anywhere resumes from its cursor and enters nobody twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.sweep_contracts import (
        PAGE_SIZE,
        PAGES_PER_RUN,
        SWEEP_PAGE,
        SweepCalls,
        SweepInput,
        SweepPageInput,
        SweepPageResult,
        SweepProgress,
        SweepResult,
    )

# Read from here by the activity, the scheduler and the command line.
__all__ = [
    "PAGES_PER_RUN",
    "PAGE_SIZE",
    "SWEEP_PAGE",
    "SweepInput",
    "SweepPageInput",
    "SweepPageResult",
    "SweepProgress",
    "SweepResult",
    "SweepWorkflow",
]


@workflow.defn(name="SweepWorkflow")
class SweepWorkflow:
    def __init__(self) -> None:
        self._state: SweepInput | None = None

    @workflow.run
    async def run(self, inp: SweepInput) -> SweepResult:
        state = self._state = replace(inp)
        pages = 0
        while True:
            page = await workflow.execute_activity_method(
                SweepCalls.sweep_page,
                SweepPageInput(
                    journey_id=state.journey_id,
                    tick=state.tick,
                    sweep_id=workflow.info().workflow_id,
                    cursor=state.cursor,
                    limit=state.page_size,
                    members_before=state.members,
                    entered_before=state.entered,
                    audience_version=state.audience_version,
                ),
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=state.heartbeat_seconds),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
            state.cursor = page.cursor
            state.members += page.members
            state.entered += page.entered
            if state.audience_version is None:
                state.audience_version = page.audience_version
            if page.done:
                return SweepResult(
                    state.journey_id,
                    state.tick,
                    state.members,
                    state.entered,
                    page.stopped,
                    state.audience_version,
                )
            pages += 1
            if pages >= state.pages_per_run or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(state)

    @workflow.query
    def progress(self) -> SweepProgress:
        assert self._state is not None
        s = self._state
        return SweepProgress(s.journey_id, s.tick, s.cursor, s.members, s.entered)
