"""``SweepWorkflow``: one scheduled tick of a schedule-triggered journey.

Pages through the journey's audience as it stood at the tick (keyset, about 1,000 users per
page) in a heartbeating activity that enrolls each page and starts its runs, carries the
cursor from page to page, and continues-as-new every few pages so its history stays small
whatever the audience's size. The workflow id ``sweep:{journey}:{tick}`` and the
``sweep_ticks`` row make a tick's sweep unique; the enrollment rows make every page
idempotent, so a sweep interrupted anywhere resumes from its cursor and enters nobody twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

SWEEP_PAGE = "sweep_page"
PAGE_SIZE = 1000
PAGES_PER_RUN = 25  # about 150 history events per run


@dataclass
class SweepInput:
    journey_id: str
    tick: datetime  # the scheduled fire time; the audience is evaluated as of this instant
    cursor: str | None = None  # the last user id entered so far (carried by continue-as-new)
    members: int = 0
    entered: int = 0
    page_size: int = PAGE_SIZE
    pages_per_run: int = PAGES_PER_RUN
    # A page attempt lost with its worker is retried after this much silence.
    heartbeat_seconds: float = 60.0


@dataclass
class SweepPageInput:
    journey_id: str
    tick: datetime
    sweep_id: str  # the workflow id, which names the sweep_ticks row and the trigger
    cursor: str | None
    limit: int
    members_before: int = 0
    entered_before: int = 0


@dataclass
class SweepPageResult:
    cursor: str | None
    members: int  # audience members this page held
    entered: int  # runs started (the rest were in the journey already or may not re-enter)
    done: bool  # the audience is exhausted, or the journey stopped being published
    stopped: str = ""  # why it ended early, e.g. "journey_not_published"


@dataclass
class SweepResult:
    journey_id: str
    tick: datetime
    members: int
    entered: int
    stopped: str = ""


@dataclass
class SweepProgress:
    journey_id: str
    tick: datetime
    cursor: str | None
    members: int
    entered: int


@workflow.defn(name="SweepWorkflow")
class SweepWorkflow:
    def __init__(self) -> None:
        self._state: SweepInput | None = None

    @workflow.run
    async def run(self, inp: SweepInput) -> SweepResult:
        state = self._state = replace(inp)
        pages = 0
        while True:
            page: SweepPageResult = await workflow.execute_activity(
                SWEEP_PAGE,
                SweepPageInput(
                    journey_id=state.journey_id,
                    tick=state.tick,
                    sweep_id=workflow.info().workflow_id,
                    cursor=state.cursor,
                    limit=state.page_size,
                    members_before=state.members,
                    entered_before=state.entered,
                ),
                result_type=SweepPageResult,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=state.heartbeat_seconds),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
            state.cursor = page.cursor
            state.members += page.members
            state.entered += page.entered
            if page.done:
                return SweepResult(
                    state.journey_id, state.tick, state.members, state.entered, page.stopped
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
