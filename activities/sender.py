"""Sending a message that passed the policy: render it, hand it to its channel's provider
with the ledger key as the message key, and record the outcome on its ledger row.

The window that remains: the provider accepted, the worker died before the row became
``sent``. The row stays ``sending`` and the retry sends again with the same key. The outbox
de-duplicates by that key; Twilio's Messages API takes no idempotency key, so a retried
attempt first asks the channel for the message an earlier attempt created (Twilio: the
recent messages to that number, matched by sender and body) and records that one instead of
sending again. Reconciliation otherwise: SendGrid events carry the key in ``custom_args``
and Twilio status callbacks the message sid, so a duplicate is visible afterwards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, assert_never

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.orders import SendOrder, broadcast_order
from activities.send_context import MessageContext, address
from channels.base import (
    Channel,
    FindsSent,
    HoldsEarlyStatuses,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
    scrub,
)
from kinds import DeviceTokens, kind, lesson
from message_templates.render import RenderedMessage, TemplateError, TemplateRenderer
from observability.metrics import metrics
from store.db import SessionFactory, transaction
from store.ledger import (
    SENT_STATUSES,
    SendStatus,
    find_send,
    find_sends,
    mark_skipped,
    record_failed,
    record_sent,
)
from store.models import Message, User
from store.webhooks import apply_held_statuses, forget_push_token, set_consent
from workflows.broadcast_contracts import SendBatchInput, SendBatchResult
from workflows.journey_contracts import DeliverResult

log = logging.getLogger(__name__)

# Seconds between a batch's heartbeats (each costs a hop to the event loop).
HEARTBEAT_EVERY = 2.0


@dataclass
class Ready:
    """A ``sending`` row's provider call, as read from the database."""

    message_id: int
    locale: str | None
    recipient: str
    context: dict[str, Any]


class Sender:
    """Renders, sends and records, in transactions of its own around the provider call.

    Args:
        factory: Sessions on the ledger's database.
        renderer: The message templates.
        channels: The sender of each channel kind.
        context: Builds a template's context (with the signed unsubscribe link).
        bulk_rates: Broadcast sends per second, per channel: how far apart a batch spaces
            its sends.
    """

    def __init__(
        self,
        factory: SessionFactory,
        *,
        renderer: TemplateRenderer,
        channels: Mapping[str, Channel],
        context: MessageContext,
        bulk_rates: Mapping[str, float],
    ):
        self._factory = factory
        self._renderer = renderer
        self._channels = channels
        self._context = context
        self._bulk_rates = bulk_rates

    def send_message(self, order: SendOrder) -> DeliverResult:
        """Render and hand a ``sending`` message to its provider; record the outcome. A row
        already past ``sending`` was sent by an earlier attempt: its outcome is returned."""
        with transaction(self._factory) as session:
            row = find_send(session, key=order.key)
            if row.status != SendStatus.SENDING:
                return outcome_of(row)
            ready = self._ready(session, order, row, session.get(User, order.user_id))
        if isinstance(ready, DeliverResult):
            return ready
        try:
            return self._hand_over(order, ready)
        except PermanentSendError as exc:
            raise ApplicationError(str(exc), type=exc.reason, non_retryable=True) from None
        except TransientSendError as exc:
            raise _retry_later(exc, 1) from None

    def send_batch(self, inp: SendBatchInput) -> SendBatchResult:
        """A broadcast's batch of ready sends, each handed over in turn and recorded right
        after, spaced at the channel's broadcast rate (a batch is no burst).

        A permanent refusal fails that send only. A transient one leaves that send for
        later: the rest of the batch goes on, then the attempt fails and Temporal retries it
        (after the provider's Retry-After); the sends already made are counted, not repeated.
        """
        result = SendBatchResult()
        todo = self._batch_ready(inp, result)
        rate = self._bulk_rates.get(inp.channel)
        spacing = 1 / rate if rate else 0.0
        unsent: list[TransientSendError] = []
        began = beat = time.monotonic()
        for i, (order, ready) in enumerate(todo):
            wait = began + i * spacing - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if time.monotonic() - beat >= HEARTBEAT_EVERY:
                activity.heartbeat(i)
                beat = time.monotonic()
            try:
                outcome = self._hand_over(order, ready)
            except PermanentSendError as exc:
                _tally(result, SendStatus.FAILED, exc.reason)
                continue
            except TransientSendError as exc:
                unsent.append(exc)  # the rest of the batch goes on
                continue
            except Exception:
                # Neither a refusal nor a retryable fault: retrying would fail the same way
                # on every attempt and hold the whole broadcast. This send fails alone.
                log.exception(
                    "broadcast %s: message %s failed unexpectedly",
                    inp.broadcast_id,
                    ready.message_id,
                )
                metrics().failed(inp.channel, "send_error")
                self._fail(ready.message_id, reason="send_error")
                _tally(result, SendStatus.FAILED, "send_error")
                continue
            _tally(result, outcome.status, outcome.reason)
        if unsent:
            # Retried; the sends made above are counted then, not made again.
            raise _retry_later(max(unsent, key=lambda e: e.retry_after or 0), len(unsent))
        return result

    def _batch_ready(
        self, inp: SendBatchInput, result: SendBatchResult
    ) -> list[tuple[SendOrder, Ready]]:
        """The batch's sends still to make, in one transaction; the others tallied."""
        orders = {user_id: broadcast_order(inp, user_id) for user_id in inp.user_ids}
        todo: list[tuple[SendOrder, Ready]] = []
        with transaction(self._factory) as session:
            rows = find_sends(session, keys=[order.key for order in orders.values()])
            users = {
                user.id: user
                for user in session.scalars(select(User).where(User.id.in_(inp.user_ids)))
            }
            for user_id, order in orders.items():
                row = rows.get(order.key)
                if row is None:  # never decided: not this batch's to send
                    log.error("broadcast %s: no ledger row for a ready send", inp.broadcast_id)
                    _tally(result, SendStatus.FAILED, "no_ledger_row")
                    continue
                if row.status != SendStatus.SENDING:  # an earlier attempt got this far
                    _tally(result, row.status, row.reason)
                    continue
                ready = self._ready(session, order, row, users.get(user_id))
                if isinstance(ready, DeliverResult):
                    _tally(result, ready.status, ready.reason)
                else:
                    todo.append((order, ready))
        return todo

    def _ready(
        self, session: Session, order: SendOrder, row: Message, user: User | None
    ) -> Ready | DeliverResult:
        """What a ``sending`` row needs for its provider call, or why it is not sent after
        all (the user was erased, or lost their address since the policy passed)."""
        recipient = address(session, order.channel, user) if user else None
        if user is None or recipient is None:
            mark_skipped(row, reason="unreachable" if user else "unknown_user")
            return outcome_of(row)
        context = self._context.build(session, order, user, message_id=row.id)
        return Ready(row.id, user.locale, recipient, context)

    def _hand_over(self, order: SendOrder, ready: Ready) -> DeliverResult:
        """Render, hand to the provider, record ``sent``. Raises ``PermanentSendError``
        (recorded ``failed`` first) or ``TransientSendError``."""
        message_id, context = ready.message_id, ready.context
        try:
            rendered = self._renderer.render(
                order.template, channel=order.channel, locale=ready.locale, context=context
            )
        except TemplateError as exc:
            # Scrubbed: a filter's error may quote the value it refused.
            problem = scrub(str(exc))
            log.error("template %s failed for message %s: %s", order.template, message_id, problem)
            metrics().failed(order.channel, "template_error")
            return self._fail(message_id, reason="template_error")
        channel = self._channels[order.channel]
        outbound = _outbound(
            order.key,
            ready.recipient,
            rendered,
            unsubscribe_url=str(context["unsubscribe_url"]),
            tags=(order.tag, order.template),
        )
        try:
            with metrics().provider_call(order.channel, channel.name):
                result = _sent_before(channel, outbound, order.now) or channel.send(outbound)
        except PermanentSendError as exc:
            metrics().failed(order.channel, exc.reason)
            self._fail(message_id, reason=exc.reason, provider=channel.name)
            self._learn(order, ready.recipient, exc.reason)
            raise
        except TransientSendError:
            metrics().failed(order.channel, "transient")
            raise
        with transaction(self._factory) as session:
            record_sent(
                session,
                message_id=message_id,
                now=order.now,
                provider=result.provider,
                provider_message_id=result.provider_message_id,
                segments=rendered.segments,
            )
        metrics().sent(order.channel, result.provider)
        if result.provider_message_id and isinstance(channel, HoldsEarlyStatuses):
            # Status callbacks that came before the id was stored were held: apply them now.
            with transaction(self._factory) as session:
                apply_held_statuses(
                    session,
                    provider=result.provider,
                    provider_message_id=result.provider_message_id,
                )
        return DeliverResult(message_id=message_id, status=SendStatus.SENT)

    def _learn(self, order: SendOrder, recipient: str, reason: str) -> None:
        """What a permanent refusal teaches, as the channel's kind says: an opted-out
        recipient is unsubscribed from the channel, a dead device token is forgotten."""
        taught = lesson(order.channel, reason)
        if taught is None:
            return
        with transaction(self._factory) as session:
            match taught:
                case "consent_lost":
                    # Dated by the send: a newer opt-in (a START reply) still stands.
                    set_consent(
                        session,
                        user_ids=[order.user_id],
                        channel=order.channel,
                        status="unsubscribed",
                        source="provider_opt_out",
                        at=order.now,
                        topics=("marketing", "transactional"),
                    )
                case "address_dead":
                    # A dead device token is forgotten; an address on the profile is the
                    # platform's to change, so it stays.
                    if isinstance(kind(order.channel).address, DeviceTokens):
                        forget_push_token(session, token=recipient, at=order.now)
                case _:
                    assert_never(taught)

    def _fail(self, message_id: int, *, reason: str, provider: str | None = None) -> DeliverResult:
        with transaction(self._factory) as session:
            record_failed(session, message_id=message_id, reason=reason, provider=provider)
        return DeliverResult(message_id=message_id, status=SendStatus.FAILED, reason=reason)


def outcome_of(row: Message) -> DeliverResult:
    """What a ledger row says of its send (``ready`` for a row that passed the policy)."""
    status = "ready" if row.status == SendStatus.SENDING else row.status
    return DeliverResult(message_id=row.id, status=status, reason=row.reason)


def _retry_later(exc: TransientSendError, unsent: int) -> ApplicationError:
    """A retryable failure of the attempt: the rows stay ``sending`` and Temporal retries,
    after the provider's Retry-After when it gave one."""
    delay = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
    detail = str(exc) if unsent == 1 else f"{unsent} sends not taken; the last: {exc}"
    return ApplicationError(detail, type="ProviderUnavailable", next_retry_delay=delay)


def _tally(result: SendBatchResult, status: str, reason: str | None) -> None:
    if status in SENT_STATUSES:
        result.sent += 1
    elif status == SendStatus.SKIPPED and reason:
        result.skipped[reason] = result.skipped.get(reason, 0) + 1
    else:
        result.failed += 1


def _sent_before(channel: Channel, outbound: OutboundMessage, since: datetime) -> SendResult | None:
    """On a retried attempt, the message the provider already took from an earlier one.

    A worker can die between the provider's answer and the ledger update; where the provider
    takes no idempotency key (Twilio), a channel that can look its recent messages up
    (:class:`FindsSent`) is asked before sending again.
    """
    if not isinstance(channel, FindsSent):
        return None
    if not activity.in_activity() or activity.info().attempt < 2:
        return None
    found = channel.find_sent(outbound, since=since)
    if found is not None:
        log.warning("%s: the provider already has it (%s); not sent again", outbound.key, found)
    return found


def _outbound(
    key: str,
    to: str,
    rendered: RenderedMessage,
    *,
    unsubscribe_url: str | None = None,
    tags: tuple[str, ...] = (),
) -> OutboundMessage:
    return OutboundMessage(
        key=key,
        channel=rendered.channel,
        to=to,
        body=rendered.body,
        subject=rendered.subject,
        html=rendered.html,
        title=rendered.title,
        data=dict(rendered.data),
        unsubscribe_url=unsubscribe_url if kind(rendered.channel).one_click_unsubscribe else None,
        tags=tags,
        priority=rendered.priority,
        ttl_seconds=rendered.ttl_seconds,
        sound=rendered.sound,
    )
