"""The journey run's contracts: its input and result, the event signal, and the activities
it calls (names, inputs, outputs), one dataclass in and one out.

They carry ids and business facts, never contact details or rendered bodies: Temporal
history is stored in plain text. New fields get defaults so running workflows keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from temporalio import activity

from journeys.models import Journey

# Activity names: the worker registers the implementations (activities/) under them.
# A send is two activities: the policy (ledger row, consent, caps, quiet hours ...) on the
# journey's task queue, then the provider call on the channel's rate-limited task queue.
PREPARE_SEND = "prepare_send"
SEND_MESSAGE = "send_message"
ISSUE_COUPON = "issue_coupon"
FINISH_ENROLLMENT = "finish_enrollment"
IN_AUDIENCE = "in_audience"
NEXT_LOCAL_TIME = "next_local_time"


@dataclass
class EventSignal:
    """A platform event a running journey hears about (its trigger, goal or exit)."""

    message_id: str
    event: str
    timestamp: datetime
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class EjectSignal:
    """A person ends the run (``lifecycle runs eject``, the console): who, and why."""

    actor: str = ""
    reason: str = ""


class Waiting(StrEnum):
    """What a run waits for (``RunPosition.waiting``)."""

    TIMER = "timer"  # a wait or wait_until step's timer
    EVENT = "event"  # a wait_for step's event (or its timeout)
    SEND = "send"  # a held send, asked again at ``until``
    GOAL = "goal"  # the goal window, after the last step


@dataclass
class RunPosition:
    """Where a run is now: the step it runs or waits in, what it waits for and until when
    (workflow time). ``step`` is empty before the first step and in the goal window."""

    step: str = ""
    waiting: str = ""  # "" while the step runs, else a Waiting
    event: str = ""  # the event a wait_for step waits for
    until: datetime | None = None
    since: datetime | None = None  # when the run reached the step


@dataclass
class CouponRef:
    """The coupon a run issued. A control run (its holdout, the global control group) issues
    none: its ref has no id or code, says why in ``withheld`` (``held_out``,
    ``global_control``, as the ledger says of its skipped sends) and keeps the amount and
    expiry the coupon would have had, so the run reads the same context as an exposed one."""

    coupon_id: int
    code: str
    amount_fen: int
    min_spend_fen: int
    expires_at: datetime
    withheld: str = ""

    @property
    def issued_id(self) -> int | None:
        """The coupon's id; None if it was withheld."""
        return None if self.withheld else self.coupon_id


@dataclass
class JourneyCarry:
    """What a restarted run hands to its continuation (continue-as-new), so ledger keys,
    the coupon and the steps run so far go on as in one run."""

    seen: list[str]  # event message ids already heard (re-deliveries are ignored)
    occurrences: dict[str, int]  # per step: how many times it has run (ledger keys)
    steps_run: list[str]
    coupon: CouponRef | None
    deadline: datetime  # the goal window of the current pass
    withheld: dict[str, str] = field(default_factory=dict)  # JourneyResult.withheld


# A run restarted by its trigger (a cart changed again) continues as new once its history
# has this many events, so a cart updated all day keeps a short history.
JOURNEY_HISTORY_LIMIT = 2000


@dataclass
class JourneyInput:
    journey: Journey
    journey_version: int
    enrollment_id: int
    user_id: str
    group: str  # treatment | holdout
    trigger: EventSignal
    entry_key: str = ""
    entry_number: int = 1
    history_limit: int = JOURNEY_HISTORY_LIMIT
    carry: JourneyCarry | None = None
    # The user is in the global control group (store.program), decided when the run starts:
    # it gets no marketing, so its coupons are withheld as a holdout's are.
    global_control: bool = False


@dataclass
class JourneyResult:
    exit_reason: str  # converted | exited | ejected | exit_step | completed
    converted: bool
    steps: list[str] = field(default_factory=list)
    # Coupon steps that issued nothing, and why: held_out | global_control.
    withheld: dict[str, str] = field(default_factory=dict)


@dataclass
class IssueCouponInput:
    issue_key: str
    user_id: str
    journey_id: str
    amount_fen: int
    min_spend_fen: int
    valid_for: timedelta
    now: datetime


@dataclass
class DeliverInput:
    idempotency_key: str
    enrollment_id: int
    journey_id: str
    step_id: str
    user_id: str
    channel: str
    template: str
    topic: str
    group: str
    now: datetime
    trigger: EventSignal
    coupon_id: int | None = None
    variant: str | None = None
    # Set when a deferred send is given up (goal reached, run exited, ejected or restarted
    # meanwhile).
    abandon: str | None = None
    # The journey's exceptions to the policy: quiet hours ("HH:MM-HH:MM" or "off"; None:
    # settings), and whether a frequency cap defers the send instead of skipping it.
    quiet_hours: str | None = None
    on_frequency_cap: str = "skip"


@dataclass
class DeliverResult:
    message_id: int
    status: str  # ready (to send) | sent | skipped | failed | deferred
    reason: str | None = None
    # For "deferred": ask again at this instant (journey paused, quiet hours, ...).
    defer_until: datetime | None = None


@dataclass
class FinishEnrollmentInput:
    enrollment_id: int
    reason: str
    now: datetime
    converted_at: datetime | None = None
    # An ejected run: who ejected it and why, and the step it was at (the fact is written
    # with the exit, so a crash of whoever ejected it cannot lose it).
    ejected: EjectSignal | None = None
    ejected_at_step: str = ""


@dataclass
class AudienceCheckInput:
    """Is ``user_id`` in the audience described by ``rule`` at ``now``?"""

    user_id: str
    rule: dict[str, Any]
    now: datetime


@dataclass
class LocalTimeInput:
    """The next ``hh_mm`` (e.g. "10:00") in the user's timezone, strictly after ``now``."""

    user_id: str
    hh_mm: str
    now: datetime


def channel_task_queue(task_queue: str, channel: str) -> str:
    """The task queue of one channel's provider calls: ``lifecycle.sms``, ``lifecycle.email``."""
    return f"{task_queue}.{channel}"


class JourneyCalls(Protocol):
    """The activities a journey run calls, by name and types; the workflow calls them
    through these methods (``workflow.execute_activity_method(JourneyCalls.prepare_send,
    ...)``) and the worker registers the implementations under the same names."""

    @activity.defn(name=PREPARE_SEND)
    def prepare_send(self, inp: DeliverInput) -> DeliverResult: ...

    @activity.defn(name=SEND_MESSAGE)
    def send_message(self, inp: DeliverInput) -> DeliverResult: ...

    @activity.defn(name=ISSUE_COUPON)
    def issue_coupon(self, inp: IssueCouponInput) -> CouponRef: ...

    @activity.defn(name=FINISH_ENROLLMENT)
    def finish_enrollment(self, inp: FinishEnrollmentInput) -> None: ...

    @activity.defn(name=IN_AUDIENCE)
    def in_audience(self, inp: AudienceCheckInput) -> bool: ...

    @activity.defn(name=NEXT_LOCAL_TIME)
    def next_local_time(self, inp: LocalTimeInput) -> datetime: ...
