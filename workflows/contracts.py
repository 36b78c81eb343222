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
class CouponRef:
    coupon_id: int
    code: str
    amount_fen: int
    min_spend_fen: int
    expires_at: datetime


@dataclass
class JourneyCarry:
    """What a restarted run hands to its continuation (continue-as-new), so ledger keys,
    the coupon and the steps run so far go on as in one run."""

    seen: list[str]  # event message ids already heard (re-deliveries are ignored)
    occurrences: dict[str, int]  # per step: how many times it has run (ledger keys)
    steps_run: list[str]
    coupon: CouponRef | None
    deadline: datetime  # the goal window of the current pass


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


@dataclass
class JourneyResult:
    exit_reason: str  # converted | exited | exit_step | completed
    converted: bool
    steps: list[str] = field(default_factory=list)


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


def bulk_task_queue(task_queue: str, channel: str) -> str:
    """The task queue of one channel's broadcast sends, ``lifecycle.sms.bulk``: their own
    rate limit, so a broadcast to millions never holds up a journey's send."""
    return f"{task_queue}.{channel}.bulk"


# Broadcasts: one template on one channel to every member of an audience.
BROADCAST_PAGE = "broadcast_page"
BROADCAST_DEFERRED = "broadcast_deferred"
RECORD_BROADCAST = "record_broadcast"
SEND_BATCH = "send_batch"
# Most recipients per ``send_batch`` activity: one activity's overhead (a round trip
# through Temporal, a few queries) shared by this many sends.
BROADCAST_BATCH = 20


def broadcast_batch_size(rate_per_second: float) -> int:
    """Sends per batch on a bulk queue limited to ``rate_per_second`` sends: at most a tenth
    of a second's worth (a batch spaces its sends, but Temporal may start two batches at
    once), at most ``BROADCAST_BATCH``. The worker limits the queue to
    ``rate / broadcast_batch_size(rate)`` batches per second."""
    return max(1, min(BROADCAST_BATCH, int(rate_per_second / 10)))


@dataclass
class BroadcastProgress:
    """What a broadcast has done so far (the ``progress`` query, and the state carried
    across continue-as-new)."""

    status: str = "scheduled"  # scheduled | running | paused | completed | cancelled
    paged: int = 0  # audience members read so far
    sent: int = 0
    failed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # by reason
    deferred: int = 0  # held (quiet hours) and asked again later
    cursor: str | None = None  # the last member id paged
    audience_done: bool = False
    next_deferred_at: datetime | None = None
    pages: int = 0


@dataclass
class BroadcastInput:
    broadcast_id: int
    channel: str
    template: str
    send_at: datetime
    topic: str = "marketing"
    rate_per_second: float | None = None
    page_size: int = 1000
    # Sends per ``send_batch`` (``broadcast_batch_size`` of the channel's broadcast rate).
    batch_size: int = BROADCAST_BATCH
    progress: BroadcastProgress = field(default_factory=BroadcastProgress)
    paused: bool = False
    cancelled: bool = False


@dataclass
class BroadcastPageInput:
    """Decide one page of recipients: the next audience members after ``cursor``
    (``BROADCAST_PAGE``) or the held sends due at ``now`` (``BROADCAST_DEFERRED``)."""

    broadcast_id: int
    key_prefix: str  # the broadcast's first execution run id
    channel: str
    template: str
    topic: str
    now: datetime
    cursor: str | None = None
    limit: int = 1000


@dataclass
class BroadcastPage:
    """The page's outcome: ids only (the workflow sends the ready ones)."""

    ready: list[str] = field(default_factory=list)  # user ids whose rows are ``sending``
    skipped: dict[str, int] = field(default_factory=dict)
    paged: int = 0
    next_cursor: str | None = None
    last_page: bool = False
    held: int = 0  # sends of this broadcast deferred (quiet hours), all pages
    next_deferred_at: datetime | None = None  # the earliest of them
    retry_at: datetime | None = None  # every send is paused: nothing decided, ask then


@dataclass
class SendBatchInput:
    """Hand a batch of a broadcast's ready sends (rows ``sending``) to the provider, at most
    ``BROADCAST_BATCH``, one after another."""

    broadcast_id: int
    key_prefix: str  # the broadcast's first execution run id
    channel: str
    template: str
    topic: str
    now: datetime
    user_ids: list[str] = field(default_factory=list)


@dataclass
class SendBatchResult:
    """Each row's outcome, counted (a retried batch counts what earlier attempts sent)."""

    sent: int = 0
    failed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class BroadcastRecord:
    """The ``broadcasts`` row as the workflow last saw it."""

    broadcast_id: int
    status: str
    recipients: int
    now: datetime
    cursor: str | None = None
    finished: bool = False


def broadcast_workflow_id(broadcast_id: int) -> str:
    """``broadcast:{id}``: one workflow per ``broadcasts`` row."""
    return f"broadcast:{broadcast_id}"


def batch_delivery(inp: BroadcastPageInput | SendBatchInput, user_id: str) -> DeliverInput:
    """``broadcast_delivery`` for one recipient of a page or a batch."""
    return broadcast_delivery(
        broadcast_id=inp.broadcast_id,
        key_prefix=inp.key_prefix,
        user_id=user_id,
        channel=inp.channel,
        template=inp.template,
        topic=inp.topic,
        now=inp.now,
    )


def broadcast_delivery(
    *,
    broadcast_id: int,
    key_prefix: str,
    user_id: str,
    channel: str,
    template: str,
    topic: str,
    now: datetime,
) -> DeliverInput:
    """One broadcast recipient's send, as the delivery policy and ``send_message`` take it:
    ledger key = the broadcast's first execution run id + the recipient."""
    workflow_id = broadcast_workflow_id(broadcast_id)
    return DeliverInput(
        idempotency_key=f"{key_prefix}/{user_id}",
        enrollment_id=0,  # none: the ledger row is written with no enrollment
        journey_id=workflow_id,  # a tag for the provider, not a journey
        step_id="broadcast",
        user_id=user_id,
        channel=channel,
        template=template,
        topic=topic,
        group="treatment",
        now=now,
        trigger=EventSignal(message_id=workflow_id, event="broadcast", timestamp=now),
    )
