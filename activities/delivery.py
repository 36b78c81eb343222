"""Sending one step's message, exactly once per step occurrence, or recording why not.

Two activities, each its own transactions:

1. ``prepare_send`` (journey task queue): the ledger row is written first, keyed by the run's
   first execution run id + step + occurrence (a row past ``pending`` means an earlier attempt
   decided: its outcome is returned); then the policy — pause, holdout, consent,
   reachability, coupon expiry, quiet hours, frequency caps. A skip is recorded with its
   reason, a deferral returns the instant to ask again; a pass makes the row ``sending``
   (counted by caps from then on).
2. ``send_message`` (the channel's rate-limited task queue): render, hand to the provider
   with the ledger key as the message key, and record ``sent`` with the provider's id.
   A broadcast hands its ready sends over in batches instead (``send_batch``, on the
   channel's bulk queue): the same steps for each send in turn, each recorded as it goes.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Table, case, select, update
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.policy import FrequencyCap, QuietHours
from channels.base import (
    Channel,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
    scrub,
)
from config import DEV_UNSUBSCRIBE_SECRET
from message_templates.render import RenderedMessage, TemplateError, TemplateRenderer
from message_templates.unsubscribe_links import UnsubscribeLinks
from observability.metrics import metrics
from store.control import sends_paused
from store.db import SessionFactory, transaction
from store.journeys import journey_paused
from store.models import Consent, Coupon, Message, PushToken, User
from store.upsert import insert_ignore
from store.webhooks import apply_held_statuses, forget_push_token, set_consent
from workflows.contracts import (
    PREPARE_SEND,
    SEND_BATCH,
    SEND_MESSAGE,
    DeliverInput,
    DeliverResult,
    SendBatchInput,
    SendBatchResult,
    batch_delivery,
)

log = logging.getLogger(__name__)

# Statuses of a message that reached (or is reaching) the user: what frequency caps count.
COUNTED_STATUSES = ("sending", "sent", "delivered", "opened", "clicked")
# How often a send held by a paused journey asks again (a timer per hour of pause).
PAUSED_RECHECK = timedelta(hours=1)
# Seconds between a batch's heartbeats (each costs a hop to the event loop).
HEARTBEAT_EVERY = 2.0


class DeliveryActivities:
    def __init__(
        self,
        factory: SessionFactory,
        *,
        renderer: TemplateRenderer,
        channels: Mapping[str, Channel],
        default_locale: str = "zh-CN",
        default_timezone: str = "Asia/Shanghai",
        unsubscribe_base_url: str = "http://127.0.0.1:8000/u",
        quiet_hours: QuietHours | None = None,
        caps: Sequence[FrequencyCap] = (),
        unsubscribe_links: UnsubscribeLinks | None = None,
        bulk_rates: Mapping[str, float] | None = None,
    ):
        # Signed links; the default signs with the development secret under the base URL.
        self._unsubscribe_links = unsubscribe_links or UnsubscribeLinks(
            DEV_UNSUBSCRIBE_SECRET, prefix=unsubscribe_base_url
        )
        self._quiet_hours = quiet_hours
        # Broadcast sends per second, per channel: how far apart a batch spaces its sends.
        self._bulk_rates = dict(bulk_rates or {})
        self._caps = tuple(caps)
        self._factory = factory
        self._renderer = renderer
        self._channels = channels
        self._default_locale = default_locale
        self._default_timezone = default_timezone
        self._unsubscribe_base_url = unsubscribe_base_url

    def deliver(self, inp: DeliverInput) -> DeliverResult:
        """The policy and the provider call in one go (for tools and tests); journeys run
        the two halves as separate activities."""
        decided = self.prepare_send(inp)
        return self.send_message(inp) if decided.status == "ready" else decided

    @activity.defn(name=PREPARE_SEND)
    def prepare_send(self, inp: DeliverInput) -> DeliverResult:
        """Write the ledger row and apply the policy: ``ready`` to send (the row becomes
        ``sending`` and counts for caps), or skipped / deferred with the reason."""
        with transaction(self._factory) as session:
            return self.decide(session, inp, self.ledger_row(session, inp))

    def decide(
        self,
        session: Any,
        inp: DeliverInput,
        row: Message,
        *,
        held_checked: bool = False,
        under_caps: bool = False,
    ) -> DeliverResult:
        """The policy for one ledger row, in the caller's transaction: ``ready`` (the row
        becomes ``sending``), or skipped / deferred with the reason. A row an earlier
        attempt decided keeps its outcome.

        ``held_checked``: the caller has already checked the operator's and the journey's
        pause (a broadcast checks once per page, not once per recipient). ``under_caps``:
        the caller holds the user's lock and knows (:meth:`without_recent_sends`) that no
        frequency cap can be reached.
        """
        if row.status == "sending":
            return DeliverResult(message_id=row.id, status="ready")
        if row.status != "pending":
            return DeliverResult(message_id=row.id, status=row.status, reason=row.reason)
        user = session.get(User, inp.user_id)
        recipient = self._recipient(session, inp.channel, user) if user else None
        context = self._context(session, inp, user, message_id=row.id) if user else None
        outcome = (
            self._recipient_policy(session, inp, row, user, recipient, context, under_caps)
            if held_checked
            else self._policy(session, inp, row, user, recipient, context)
        )
        if outcome is not None:
            metrics().policy_outcome(inp.channel, outcome.status, outcome.reason)
            return outcome
        # Passed: counted by frequency caps from now on, even if the provider is slow. A hold
        # it was under is over.
        row.status, row.sent_at = "sending", inp.now
        row.reason, row.deferred_until = None, None
        return DeliverResult(message_id=row.id, status="ready")

    @activity.defn(name=SEND_MESSAGE)
    def send_message(self, inp: DeliverInput) -> DeliverResult:
        """Render and hand a ``sending`` message to its provider; record the outcome.

        Runs on the channel's task queue, whose rate limit holds across all workers. A row
        already past ``sending`` was sent by an earlier attempt: its outcome is returned.
        """
        with transaction(self._factory) as session:
            row = session.scalars(
                select(Message).where(Message.idempotency_key == inp.idempotency_key)
            ).one()
            if row.status != "sending":
                return DeliverResult(message_id=row.id, status=row.status, reason=row.reason)
            ready = self._ready(session, inp, row, session.get(User, inp.user_id))
        if isinstance(ready, DeliverResult):
            return ready
        try:
            return self._hand_over(inp, ready)
        except PermanentSendError as exc:
            raise ApplicationError(str(exc), type=exc.reason, non_retryable=True) from None
        except TransientSendError as exc:
            raise _retry_later(exc, 1) from None

    @activity.defn(name=SEND_BATCH)
    def send_batch(self, inp: SendBatchInput) -> SendBatchResult:
        """A broadcast's batch of ready sends: each rendered and handed to the provider in
        turn, with its own ledger row recorded right after (as ``send_message`` does), so a
        retried batch sends only what an earlier attempt did not.

        Runs on the channel's bulk task queue, rate-limited in batches per second; within a
        batch, sends are spaced at the channel's broadcast rate, so a batch is no burst. A
        permanent refusal fails that send only. A transient one leaves that send for later:
        the rest of the batch goes on, then the attempt fails and Temporal retries it (after
        the provider's Retry-After); the sends already made are counted, not repeated.
        """
        requests = {user_id: batch_delivery(inp, user_id) for user_id in inp.user_ids}
        keys = [r.idempotency_key for r in requests.values()]
        result = SendBatchResult()
        todo: list[tuple[DeliverInput, _Ready]] = []
        with transaction(self._factory) as session:
            rows = {
                row.idempotency_key: row
                for row in session.scalars(select(Message).where(Message.idempotency_key.in_(keys)))
            }
            users = {
                user.id: user
                for user in session.scalars(select(User).where(User.id.in_(inp.user_ids)))
            }
            for user_id, request in requests.items():
                row = rows.get(request.idempotency_key)
                if row is None:  # never decided: not this batch's to send
                    log.error("broadcast %s: no ledger row for a ready send", inp.broadcast_id)
                    _tally(result, "failed", "no_ledger_row")
                    continue
                if row.status != "sending":  # an earlier attempt got this far
                    _tally(result, row.status, row.reason)
                    continue
                ready = self._ready(session, request, row, users.get(user_id))
                if isinstance(ready, DeliverResult):
                    _tally(result, ready.status, ready.reason)
                else:
                    todo.append((request, ready))
        rate = self._bulk_rates.get(inp.channel)
        spacing = 1 / rate if rate else 0.0
        unsent: list[TransientSendError] = []
        began = beat = time.monotonic()
        for i, (request, ready) in enumerate(todo):
            wait = began + i * spacing - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if time.monotonic() - beat >= HEARTBEAT_EVERY:
                activity.heartbeat(i)
                beat = time.monotonic()
            try:
                outcome = self._hand_over(request, ready)
            except PermanentSendError as exc:
                _tally(result, "failed", exc.reason)
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
                self._finish(ready.message_id, status="failed", reason="send_error")
                _tally(result, "failed", "send_error")
                continue
            _tally(result, outcome.status, outcome.reason)
        if unsent:
            # Retried; the sends made above are counted then, not made again.
            raise _retry_later(max(unsent, key=lambda e: e.retry_after or 0), len(unsent))
        return result

    def _ready(
        self, session: Any, inp: DeliverInput, row: Message, user: User | None
    ) -> _Ready | DeliverResult:
        """What a ``sending`` row needs for its provider call, or why it is not sent after
        all (the user was erased, or lost their address since the policy passed)."""
        recipient = self._recipient(session, inp.channel, user) if user else None
        if user is None or recipient is None:
            row.status, row.reason = "skipped", "unreachable" if user else "unknown_user"
            return DeliverResult(message_id=row.id, status="skipped", reason=row.reason)
        context = self._context(session, inp, user, message_id=row.id)
        return _Ready(row.id, user.locale, recipient, context)

    def _hand_over(self, inp: DeliverInput, ready: _Ready) -> DeliverResult:
        """Render, hand to the provider, record ``sent``. Raises ``PermanentSendError``
        (recorded ``failed`` first) or a retryable ``ApplicationError``."""
        message_id, context = ready.message_id, ready.context
        try:
            rendered = self._renderer.render(
                inp.template, channel=inp.channel, locale=ready.locale, context=context
            )
        except TemplateError as exc:
            # Scrubbed: a filter's error may quote the value it refused.
            problem = scrub(str(exc))
            log.error("template %s failed for message %s: %s", inp.template, message_id, problem)
            metrics().failed(inp.channel, "template_error")
            return self._finish(message_id, status="failed", reason="template_error")
        channel = self._channels[inp.channel]
        outbound = _outbound(
            inp.idempotency_key,
            ready.recipient,
            rendered,
            unsubscribe_url=str(context["unsubscribe_url"]),
            tags=(inp.journey_id, inp.template),
        )
        try:
            with metrics().provider_call(inp.channel, channel.name):
                result = _sent_before(channel, outbound, inp.now) or channel.send(outbound)
        except PermanentSendError as exc:
            metrics().failed(inp.channel, exc.reason)
            self._finish(message_id, status="failed", reason=exc.reason, provider=channel.name)
            self._learn(inp, ready.recipient, exc.reason)
            raise
        except TransientSendError:
            metrics().failed(inp.channel, "transient")
            raise
        ledger = _LEDGER.c
        with transaction(self._factory) as session:
            # A Core statement on the session's connection: no ORM synchronisation of a
            # session that holds no row.
            session.connection().execute(
                update(_LEDGER)
                .where(ledger.id == message_id)
                .values(
                    # A webhook may already have moved it on.
                    status=case((ledger.status == "sending", "sent"), else_=ledger.status),
                    sent_at=inp.now,
                    provider=result.provider,
                    provider_message_id=result.provider_message_id,
                )
            )
        metrics().sent(inp.channel, result.provider)
        if result.provider_message_id and getattr(channel, "holds_early_statuses", False):
            # Status callbacks that came before the id was stored were held: apply them now.
            with transaction(self._factory) as session:
                apply_held_statuses(
                    session,
                    provider=result.provider,
                    provider_message_id=result.provider_message_id,
                )
        return DeliverResult(message_id=message_id, status="sent")

    def _policy(
        self,
        session: Any,
        inp: DeliverInput,
        row: Message,
        user: User | None,
        recipient: str | None,
        context: dict[str, Any] | None,
    ) -> DeliverResult | None:
        """Why this send does not go out now (skipped, or deferred), or None to send."""
        if inp.abandon:
            return _skip(row, inp.abandon)
        if sends_paused(session):
            return _defer(row, "paused_all", inp.now + PAUSED_RECHECK)  # an operator's stop-all
        if journey_paused(session, journey_id=inp.journey_id):
            # Held, not lost: the run asks again later, with this same ledger row.
            return _defer(row, "journey_paused", inp.now + PAUSED_RECHECK)
        return self._recipient_policy(session, inp, row, user, recipient, context)

    def _recipient_policy(
        self,
        session: Any,
        inp: DeliverInput,
        row: Message,
        user: User | None,
        recipient: str | None,
        context: dict[str, Any] | None,
        under_caps: bool = False,
    ) -> DeliverResult | None:
        """The recipient's part of the policy: holdout, consent, reachability, coupon
        expiry, quiet hours, frequency caps."""
        reason = self._skip_reason(session, inp, user)
        if reason is not None or user is None or context is None:
            return _skip(row, reason or "unknown_user")
        if recipient is None:
            return _skip(row, "unreachable")
        coupon = context["coupon"]
        expires = coupon.get("expires_at") if coupon else None
        if isinstance(expires, datetime) and expires <= inp.now:
            return _skip(row, "coupon_expired")  # a nudge whose coupon is gone is not sent
        if inp.topic != "marketing":
            return None  # transactional: no quiet hours, no caps
        quiet = self._quiet_hours
        if inp.quiet_hours is not None:  # the journey's own window, or "off"
            quiet = None if inp.quiet_hours == "off" else QuietHours.parse(inp.quiet_hours)
        if quiet is not None:
            later = quiet.defer_until(inp.now, _valid_zone(user.timezone, self._default_timezone))
            if later is not None:
                return _defer(row, "quiet_hours", later)
        room_at = None if under_caps else self._over_cap(session, inp, row)
        if room_at is not None:
            if inp.on_frequency_cap == "defer":
                return _defer(row, "frequency_cap", room_at)
            return _skip(row, "frequency_cap")
        return None

    def without_recent_sends(
        self, session: Any, *, user_ids: Sequence[str], now: datetime
    ) -> set[str]:
        """Lock the users (as :meth:`_over_cap` does, all at once) and return those with
        no counted marketing send within any cap's window: no cap can stop their next one.
        """
        if not self._caps or not user_ids:
            return set(user_ids)
        session.execute(
            update(User).where(User.id.in_(user_ids)).values(updated_at=User.updated_at)
        )
        since = now - max(cap.window for cap in self._caps)
        recent = select(Message.user_id).where(
            Message.user_id.in_(user_ids),
            Message.topic == "marketing",
            Message.status.in_(COUNTED_STATUSES),
            Message.sent_at > since,
        )
        return set(user_ids) - set(session.scalars(recent))

    def _over_cap(self, session: Any, inp: DeliverInput, row: Message) -> datetime | None:
        """If one more marketing send would break a frequency cap (across journeys), when
        there will be room again; None if there is room now.

        The user's row is locked first, so two journeys checking at the same moment take
        turns: the second sees the first's ``sending`` row and stops.
        """
        if not self._caps:
            return None
        session.execute(
            update(User).where(User.id == inp.user_id).values(updated_at=User.updated_at)
        )
        for cap in self._caps:
            stmt = (
                select(Message.sent_at)
                .where(
                    Message.user_id == inp.user_id,
                    Message.topic == "marketing",
                    Message.status.in_(COUNTED_STATUSES),
                    Message.sent_at > inp.now - cap.window,
                    Message.id != row.id,
                )
                .order_by(Message.sent_at.desc())
            )
            if cap.channel is not None:
                stmt = stmt.where(Message.channel == cap.channel)
            recent = [at for at in session.scalars(stmt) if at is not None]
            if len(recent) >= cap.limit:
                # Room again once the send that makes the count reach the limit ages out.
                return recent[cap.limit - 1] + cap.window
        return None

    def ledger_row(self, session: Any, inp: DeliverInput, **columns: Any) -> Message:
        """The ledger row of ``inp.idempotency_key``, created ``pending`` if new and locked;
        ``columns`` override the values taken from ``inp`` (a broadcast's row has no
        enrollment or journey, but a ``broadcast_id``)."""
        insert_ignore(session, Message, values=ledger_values(inp, **columns))
        stmt = select(Message).where(Message.idempotency_key == inp.idempotency_key)
        return session.scalars(stmt.with_for_update()).one()

    def _skip_reason(self, session: Any, inp: DeliverInput, user: User | None) -> str | None:
        if user is None:
            return "unknown_user"
        if inp.group == "holdout":
            return "held_out"
        consent = session.get(Consent, (user.id, inp.channel, inp.topic))
        if consent is not None and consent.status == "unsubscribed":
            return "unsubscribed"
        return None

    def _recipient(self, session: Any, channel: str, user: User) -> str | None:
        if channel == "sms":
            return user.phone
        if channel == "email":
            return user.email
        stmt = (
            select(PushToken.token)
            .where(PushToken.user_id == user.id)
            .order_by(PushToken.created_at.desc())
            .limit(1)
        )
        return session.scalar(stmt)

    def _context(
        self, session: Any, inp: DeliverInput, user: User, *, message_id: int
    ) -> dict[str, Any]:
        coupon = session.get(Coupon, inp.coupon_id) if inp.coupon_id else None
        code = inp.trigger.properties.get("coupon_code")
        if coupon is None and isinstance(code, str):
            # A run triggered by `coupon_issued` names its coupon in the trigger.
            stmt = select(Coupon).where(Coupon.code == code, Coupon.user_id == user.id)
            coupon = session.scalar(stmt)
        traits = user.traits or {}
        return {
            "user": {
                "id": user.id,
                "name": str(traits.get("name") or traits.get("first_name") or ""),
                "member_tier": user.member_tier,
                "locale": user.locale or self._default_locale,
                "timezone": user.timezone or self._default_timezone,
            },
            "coupon": _coupon_context(coupon, inp.trigger.properties),
            "trigger": {
                "event": inp.trigger.event,
                "properties": inp.trigger.properties,
                "timestamp": inp.trigger.timestamp,
            },
            "unsubscribe_url": self._unsubscribe_links.url(
                user_id=user.id,
                channel=inp.channel,
                topic=inp.topic,
                message_id=message_id,
                now=inp.now,
            ),
        }

    def _learn(self, inp: DeliverInput, recipient: str, reason: str) -> None:
        """What a permanent refusal teaches: an opted-out number is unsubscribed from SMS,
        a dead push token is forgotten."""
        with transaction(self._factory) as session:
            if reason == "opted_out" and inp.channel == "sms":
                # Dated by the send: a newer opt-in (a START reply) still stands.
                set_consent(
                    session,
                    user_ids=[inp.user_id],
                    channel="sms",
                    status="unsubscribed",
                    source="provider_opt_out",
                    at=inp.now,
                    topics=("marketing", "transactional"),
                )
            elif reason == "unregistered_token" and inp.channel == "push":
                forget_push_token(session, token=recipient, at=inp.now)

    def _finish(
        self, message_id: int, *, status: str, reason: str, provider: str | None = None
    ) -> DeliverResult:
        with transaction(self._factory) as session:
            row = session.get_one(Message, message_id)
            row.status, row.reason, row.provider = status, reason, provider
        return DeliverResult(message_id=message_id, status=status, reason=reason)


@dataclass
class _Ready:
    """A ``sending`` row's provider call, as read from the database."""

    message_id: int
    locale: str | None
    recipient: str
    context: dict[str, Any]


SENT_STATUSES = ("sent", "delivered", "opened", "clicked")
_LEDGER: Table = Message.__table__  # type: ignore[assignment]


def _retry_later(exc: TransientSendError, unsent: int) -> ApplicationError:
    """A retryable failure of the attempt: the rows stay ``sending`` and Temporal retries,
    after the provider's Retry-After when it gave one."""
    delay = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
    detail = str(exc) if unsent == 1 else f"{unsent} sends not taken; the last: {exc}"
    return ApplicationError(detail, type="ProviderUnavailable", next_retry_delay=delay)


def _tally(result: SendBatchResult, status: str, reason: str | None) -> None:
    if status in SENT_STATUSES:
        result.sent += 1
    elif status == "skipped" and reason:
        result.skipped[reason] = result.skipped.get(reason, 0) + 1
    else:
        result.failed += 1


def ledger_values(inp: DeliverInput, **columns: Any) -> dict[str, Any]:
    """A new ``pending`` ledger row for ``inp`` (``columns`` override)."""
    return {
        "idempotency_key": inp.idempotency_key,
        "enrollment_id": inp.enrollment_id,
        "journey_id": inp.journey_id,
        "step_id": inp.step_id,
        "user_id": inp.user_id,
        "channel": inp.channel,
        "template": inp.template,
        "variant": inp.variant,
        "topic": inp.topic,
        "status": "pending",
        "created_at": inp.now,
    } | columns


def _skip(row: Message, reason: str) -> DeliverResult:
    row.status, row.reason = "skipped", reason
    return DeliverResult(message_id=row.id, status="skipped", reason=reason)


def _defer(row: Message, reason: str, until: datetime) -> DeliverResult:
    """Hold the send: the row stays ``pending`` and says why and until when (the timeline,
    the console and ``broadcast status`` show it) until a later decision sends it."""
    row.reason, row.deferred_until = reason, until
    return DeliverResult(message_id=row.id, status="deferred", reason=reason, defer_until=until)


def _sent_before(channel: Channel, outbound: OutboundMessage, since: datetime) -> SendResult | None:
    """On a retried attempt, the message the provider already took from an earlier one.

    A worker can die between the provider's answer and the ledger update; where the provider
    takes no idempotency key (Twilio), a channel that can look its recent messages up
    (``find_sent``) is asked before sending again.
    """
    find = getattr(channel, "find_sent", None)
    if find is None or not activity.in_activity() or activity.info().attempt < 2:
        return None
    found: SendResult | None = find(outbound, since=since)
    if found is not None:
        log.warning("%s: the provider already has it (%s); not sent again", outbound.key, found)
    return found


def _valid_zone(zone: str | None, default: str) -> str:
    if not zone:
        return default
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return default
    return zone


def _coupon_context(coupon: Coupon | None, trigger: dict[str, Any]) -> dict[str, Any] | None:
    """The coupon a message is about: one we issued, or one the platform announced in a
    ``coupon_issued`` trigger (code, amounts and expiry from its properties)."""
    if coupon is not None:
        return {
            "code": coupon.code,
            "amount_fen": coupon.amount_fen,
            "min_spend_fen": coupon.min_spend_fen,
            "expires_at": coupon.expires_at,
        }
    code = trigger.get("coupon_code")
    if not isinstance(code, str):
        return None
    expires: Any = trigger.get("expires_at")
    if isinstance(expires, str):
        try:
            expires = datetime.fromisoformat(expires)
        except ValueError:
            expires = None
    return {
        "code": code,
        "amount_fen": trigger.get("amount_fen"),
        "min_spend_fen": trigger.get("min_spend_fen", 0),
        "expires_at": expires,
    }


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
        unsubscribe_url=unsubscribe_url if rendered.channel == "email" else None,
        tags=tags,
        priority=rendered.priority,
        ttl_seconds=rendered.ttl_seconds,
        sound=rendered.sound,
    )
