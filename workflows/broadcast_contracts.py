"""The broadcast run's contracts: its input and progress, and the activities it calls
(a page of recipients decided, a batch sent, the row recorded), one dataclass in and one
out. They carry ids, never contact details."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from temporalio import activity

from workflows.ids import broadcast_workflow_id
from workflows.journey_contracts import DeliverInput, EventSignal


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


class BroadcastCalls(Protocol):
    """The activities a broadcast run calls, by name and types (the worker registers the
    implementations under the same names); its old per-recipient path calls
    ``JourneyCalls.send_message``."""

    @activity.defn(name=BROADCAST_PAGE)
    def broadcast_page(self, inp: BroadcastPageInput) -> BroadcastPage: ...

    @activity.defn(name=BROADCAST_DEFERRED)
    def broadcast_deferred(self, inp: BroadcastPageInput) -> BroadcastPage: ...

    @activity.defn(name=SEND_BATCH)
    def send_batch(self, inp: SendBatchInput) -> SendBatchResult: ...

    @activity.defn(name=RECORD_BROADCAST)
    def record_broadcast(self, inp: BroadcastRecord) -> None: ...
