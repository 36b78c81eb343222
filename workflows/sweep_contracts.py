"""The sweep run's contracts: its input, progress and result, and the page activity it
calls (one page of the audience entered), one dataclass in and one out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from temporalio import activity

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
    # The saved audience version the first page swept, kept for the tick's other pages.
    audience_version: int | None = None


@dataclass
class SweepPageInput:
    journey_id: str
    tick: datetime
    sweep_id: str  # the workflow id, which names the sweep_ticks row and the trigger
    cursor: str | None
    limit: int
    members_before: int = 0
    entered_before: int = 0
    # A saved audience's version to sweep; None on the first page (the latest then).
    audience_version: int | None = None


@dataclass
class SweepPageResult:
    cursor: str | None
    members: int  # audience members this page held
    entered: int  # runs started (the rest were in the journey already or may not re-enter)
    done: bool  # the audience is exhausted, or the journey stopped being published
    stopped: str = ""  # why it ended early, e.g. "journey_not_published"
    audience_version: int | None = None  # the saved audience version swept, if saved


@dataclass
class SweepResult:
    journey_id: str
    tick: datetime
    members: int
    entered: int
    stopped: str = ""
    audience_version: int | None = None  # the saved audience version swept, if saved


@dataclass
class SweepProgress:
    journey_id: str
    tick: datetime
    cursor: str | None
    members: int
    entered: int


class SweepCalls(Protocol):
    """The activity a sweep run calls, by name and types (the worker registers the
    implementation under the same name)."""

    @activity.defn(name=SWEEP_PAGE)
    async def sweep_page(self, inp: SweepPageInput) -> SweepPageResult: ...
