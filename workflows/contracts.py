"""Inputs and outputs of workflows, signals and activities (one dataclass in, one out).

They carry ids and business facts, never contact details or rendered bodies: Temporal
history is stored in plain text. New fields get defaults so running workflows keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from journeys.models import Journey

# Activity names, shared by the workflow (which calls by name) and the worker (which registers).
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
class JourneyInput:
    journey: Journey
    journey_version: int
    enrollment_id: int
    user_id: str
    group: str  # treatment | holdout
    trigger: EventSignal
    entry_key: str = ""
    entry_number: int = 1


@dataclass
class JourneyResult:
    exit_reason: str  # converted | exited | exit_step | completed
    converted: bool
    steps: list[str] = field(default_factory=list)


@dataclass
class CouponRef:
    coupon_id: int
    code: str
    amount_fen: int
    min_spend_fen: int
    expires_at: datetime


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
    # Set when a deferred send is given up (goal reached, run exited or restarted meanwhile).
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
