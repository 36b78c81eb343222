"""Sending one step's message, exactly once per step occurrence, or recording why not.

Two activities, each its own transactions:

1. ``prepare_send`` (journey task queue): the ledger row is written first, keyed by the run's
   first execution run id + step + occurrence (a row past ``pending`` means an earlier attempt
   decided: its outcome is returned); then the policy (:func:`activities.policy.decide`
   over what :mod:`activities.policy_reads` read): pause, holdout, consent, reachability,
   coupon expiry, quiet hours, frequency caps. A skip is recorded with its reason, a
   deferral returns the instant to ask again; a pass makes the row ``sending`` (counted by
   caps from then on).
2. ``send_message`` (the channel's rate-limited task queue): render, hand to the provider
   with the ledger key as the message key, and record ``sent`` with the provider's id
   (:class:`activities.sender.Sender`). A broadcast hands its ready sends over in batches
   instead (``send_batch``, on the channel's bulk queue): the same steps for each send in
   turn, each recorded as it goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import assert_never

from temporalio import activity

from activities import policy
from activities.orders import SendOrder, step_order
from activities.policy import DeliveryRules
from activities.policy_reads import PolicyReads
from activities.send_context import MessageContext
from activities.sender import Sender, outcome_of
from channels.base import Channel
from message_templates.render import TemplateRenderer
from message_templates.unsubscribe_links import UnsubscribeLinks
from observability.metrics import metrics
from store.db import SessionFactory, transaction
from store.ledger import SendStatus, mark_held, mark_sending, mark_skipped, open_send
from store.models import Message
from workflows.broadcast_contracts import SEND_BATCH, SendBatchInput, SendBatchResult
from workflows.journey_contracts import PREPARE_SEND, SEND_MESSAGE, DeliverInput, DeliverResult


@dataclass(frozen=True)
class DeliveryDeps:
    """What delivery is built with.

    Args:
        factory: Sessions on the ledger's database.
        renderer: The message templates.
        channels: The sender of each channel kind.
        unsubscribe_links: Signs the unsubscribe link each message carries.
        rules: Quiet hours, frequency caps and the default time zone.
        default_locale: The locale of a profile that names none.
        bulk_rates: Broadcast sends per second, per channel.
    """

    factory: SessionFactory
    renderer: TemplateRenderer
    channels: Mapping[str, Channel]
    unsubscribe_links: UnsubscribeLinks
    rules: DeliveryRules = DeliveryRules()
    default_locale: str = "zh-CN"
    bulk_rates: Mapping[str, float] = field(default_factory=dict)


class DeliveryActivities:
    """The send activities, built once with their dependencies (``worker.py``)."""

    def __init__(self, deps: DeliveryDeps):
        self.rules = deps.rules
        self._factory = deps.factory
        context = MessageContext(
            deps.unsubscribe_links,
            default_locale=deps.default_locale,
            default_timezone=deps.rules.default_timezone,
        )
        self._sender = Sender(
            deps.factory,
            renderer=deps.renderer,
            channels=deps.channels,
            context=context,
            bulk_rates=deps.bulk_rates,
        )

    @activity.defn(name=PREPARE_SEND)
    def prepare_send(self, inp: DeliverInput) -> DeliverResult:
        """Write the ledger row and apply the policy: ``ready`` to send (the row becomes
        ``sending`` and counts for caps), or skipped / deferred with the reason."""
        order = step_order(inp)
        with transaction(self._factory) as session:
            row = open_send(session, send=order.new_send())
            return self.decide(PolicyReads(session, self.rules), order, row)

    def decide(self, reads: PolicyReads, order: SendOrder, row: Message) -> DeliverResult:
        """The policy for one ledger row, in the transaction of ``reads``: ``ready`` (the
        row becomes ``sending``), or skipped / deferred with the reason. A row an earlier
        attempt decided keeps its outcome."""
        if row.status != SendStatus.PENDING:
            return outcome_of(row)
        decision = policy.decide(reads.snapshot(order, row), self.rules)
        match decision.verdict:
            case "ready":
                mark_sending(row, now=order.now)
            case "skipped":
                assert decision.reason is not None
                mark_skipped(row, reason=decision.reason)
            case "deferred":
                assert decision.reason is not None and decision.until is not None
                mark_held(row, reason=decision.reason, until=decision.until)
            case _:
                assert_never(decision.verdict)
        if decision.verdict != "ready":
            metrics().policy_outcome(order.channel, decision.verdict, decision.reason)
        return DeliverResult(
            message_id=row.id,
            status=decision.verdict,
            reason=decision.reason,
            defer_until=decision.until,
        )

    @activity.defn(name=SEND_MESSAGE)
    def send_message(self, inp: DeliverInput) -> DeliverResult:
        """Render and hand a ``sending`` message to its provider; record the outcome.

        Runs on the channel's task queue, whose rate limit holds across all workers. A row
        already past ``sending`` was sent by an earlier attempt: its outcome is returned.
        """
        return self._sender.send_message(step_order(inp))

    @activity.defn(name=SEND_BATCH)
    def send_batch(self, inp: SendBatchInput) -> SendBatchResult:
        """A broadcast's batch of ready sends: each rendered and handed to the provider in
        turn, with its own ledger row recorded right after (as ``send_message`` does), so a
        retried batch sends only what an earlier attempt did not.

        Runs on the channel's bulk task queue, rate-limited in batches per second; within a
        batch, sends are spaced at the channel's broadcast rate.
        """
        return self._sender.send_batch(inp)
