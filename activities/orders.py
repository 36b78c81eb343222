"""What one send is about, whoever asked for it: a journey run's send step, or one
recipient of a broadcast. The policy, the ledger and the sender work on a
:class:`SendOrder`; the activities turn their inputs into one at the edge.

A broadcast's recipient is its own kind of order, not a journey step: its ledger row names
the broadcast (no enrollment, no journey), no journey pause or override applies, and its
template sees ``trigger.event == "broadcast"``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, assert_never

from store.ledger import NewSend
from workflows.broadcast_contracts import BroadcastPageInput, SendBatchInput
from workflows.ids import broadcast_workflow_id
from workflows.journey_contracts import DeliverInput, EventSignal


@dataclass(frozen=True)
class JourneyStep:
    """A send asked for by a journey run's step, with the journey's exceptions to the
    policy and the event that started the run."""

    enrollment_id: int | None
    journey_id: str
    step_id: str
    trigger: EventSignal
    group: str = "treatment"
    variant: str | None = None
    coupon_id: int | None = None
    abandon: str | None = None  # the run gave the send up (goal reached, exited, restarted)
    quiet_hours: str | None = None  # "HH:MM-HH:MM", "off", or None: the settings'
    on_frequency_cap: str = "skip"  # or "defer"


@dataclass(frozen=True)
class BroadcastRecipient:
    """A send to one member of a broadcast's audience."""

    broadcast_id: int


@dataclass(frozen=True)
class SendOrder:
    """One message to one user: its ledger key, channel, template and topic, at ``now``
    (the workflow's time), and who asked for it."""

    key: str
    user_id: str
    channel: str
    template: str
    topic: str
    now: datetime
    asked_by: JourneyStep | BroadcastRecipient

    def new_send(self) -> NewSend:
        """The order's ledger row as first written."""
        row = NewSend(
            key=self.key,
            user_id=self.user_id,
            channel=self.channel,
            template=self.template,
            topic=self.topic,
            created_at=self.now,
        )
        match self.asked_by:
            case JourneyStep() as step:
                return replace(
                    row,
                    enrollment_id=step.enrollment_id,
                    journey_id=step.journey_id,
                    step_id=step.step_id,
                    variant=step.variant,
                )
            case BroadcastRecipient(broadcast_id):
                # The step names the broadcast (in a user's timeline).
                return replace(
                    row, step_id=broadcast_workflow_id(broadcast_id), broadcast_id=broadcast_id
                )
            case _:
                assert_never(self.asked_by)

    @property
    def tag(self) -> str:
        """Who sent it, as the provider's tags say: the journey, or ``broadcast:{id}``."""
        match self.asked_by:
            case JourneyStep(journey_id=journey_id):
                return journey_id
            case BroadcastRecipient(broadcast_id):
                return broadcast_workflow_id(broadcast_id)
            case _:
                assert_never(self.asked_by)

    def trigger_context(self) -> dict[str, Any]:
        """The template's ``trigger``: the event that started the run (a broadcast's is
        ``broadcast``, with no properties, at the send's time)."""
        match self.asked_by:
            case JourneyStep(trigger=trigger):
                return {
                    "event": trigger.event,
                    "properties": trigger.properties,
                    "timestamp": trigger.timestamp,
                }
            case BroadcastRecipient():
                return {"event": "broadcast", "properties": {}, "timestamp": self.now}
            case _:
                assert_never(self.asked_by)


def step_order(inp: DeliverInput) -> SendOrder:
    """The order of a journey's send step (``prepare_send`` and ``send_message``)."""
    return SendOrder(
        key=inp.idempotency_key,
        user_id=inp.user_id,
        channel=inp.channel,
        template=inp.template,
        topic=inp.topic,
        now=inp.now,
        asked_by=JourneyStep(
            enrollment_id=inp.enrollment_id,
            journey_id=inp.journey_id,
            step_id=inp.step_id,
            trigger=inp.trigger,
            group=inp.group,
            variant=inp.variant,
            coupon_id=inp.coupon_id,
            abandon=inp.abandon,
            quiet_hours=inp.quiet_hours,
            on_frequency_cap=inp.on_frequency_cap,
        ),
    )


def broadcast_order(
    inp: BroadcastPageInput | SendBatchInput, user_id: str, *, key: str | None = None
) -> SendOrder:
    """One recipient's order in a broadcast's page or batch: ledger key = the broadcast's
    first execution run id + the recipient, unless ``key`` names the row (a held send asked
    again)."""
    return SendOrder(
        key=key or f"{inp.key_prefix}/{user_id}",
        user_id=user_id,
        channel=inp.channel,
        template=inp.template,
        topic=inp.topic,
        now=inp.now,
        asked_by=BroadcastRecipient(inp.broadcast_id),
    )
