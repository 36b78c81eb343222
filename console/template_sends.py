"""The Templates page's work: previews for the sample or a real user, and test sends.

A test send goes through the channel's configured provider, exactly as ``lifecycle
send-test`` sends, only to an address on ``LIFECYCLE_TEST_SEND_ALLOWLIST``, and leaves one
ledger row marked as a test: topic ``test``, step ``test_send``, no journey, broadcast or
user. Frequency caps and the program's figures count the ``marketing`` topic only, and the
journey and broadcast reports count their own rows, so none of them counts a test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.base import Channel, OutboundMessage, PermanentSendError, TransientSendError
from kinds import DeviceTokens, ProfileColumn, ProfileTrait, kind
from message_templates.preview import TemplatePreview, preview, user_context
from message_templates.render import RenderedMessage, TemplateRenderer
from message_templates.sample import sample_context
from store.db import SessionFactory, transaction
from store.ledger import mark_failed, mark_sending, record_sent
from store.models import Coupon, Message, User

TEST_TOPIC = "test"
TEST_STEP = "test_send"


class SendTestRefused(Exception):
    """A test send that may not go: no allow-list, or an address not on it."""


@dataclass(frozen=True)
class SendTestOutcome:
    """What became of a test send: its ledger row and what the provider said."""

    message_id: int
    status: str
    provider: str | None
    provider_message_id: str | None = None
    reason: str | None = None


def outbound_test(message: RenderedMessage, *, to: str, key: str | None = None) -> OutboundMessage:
    """``message`` as a test to ``to``: tagged ``send-test`` and the template, keyed
    ``test:<random>`` unless ``key`` is given."""
    return OutboundMessage(
        key=key or f"test:{uuid.uuid4().hex}",
        channel=message.channel,
        to=to,
        body=message.body,
        subject=message.subject,
        html=message.html,
        title=message.title,
        data=dict(message.data),
        tags=("send-test", message.template),
        priority=message.priority,
        ttl_seconds=message.ttl_seconds,
        sound=message.sound,
    )


def allowed_addresses(allowlist: list[str], channel: str) -> list[str]:
    """The entries of the allow-list that are addresses of ``channel``'s kind: E.164 numbers
    for a phone, email addresses for an email, anything else for a device token."""
    match kind(channel).address:
        case ProfileColumn(name=name) | ProfileTrait(name=name):
            wanted = name
        case DeviceTokens():
            wanted = "token"
        case unexpected:
            assert_never(unexpected)
    return [entry for entry in allowlist if _shape(entry) == wanted]


def _shape(entry: str) -> str:
    if "@" in entry:
        return "email"
    return "phone" if entry.startswith("+") and entry[1:].isdigit() else "token"


def held_coupon(session: Session, *, user_id: str, now: datetime) -> Coupon | None:
    """The coupon a user's message would name: their newest one still usable at ``now``,
    else their newest one."""
    newest = select(Coupon).where(Coupon.user_id == user_id).order_by(Coupon.issued_at.desc())
    usable = newest.where(Coupon.redeemed_at.is_(None), Coupon.expires_at > now)
    return session.scalars(usable.limit(1)).first() or session.scalars(newest.limit(1)).first()


def real_user_context(
    session: Session, *, user_id: str, now: datetime, default_locale: str, default_timezone: str
) -> dict[str, Any] | None:
    """The context a template is previewed with for the user ``user_id`` (their profile,
    locale, timezone and coupon; the sample trigger and link), or None without that user."""
    user = session.get(User, user_id)
    if user is None:
        return None
    coupon = held_coupon(session, user_id=user_id, now=now)
    return user_context(
        user, coupon, default_locale=default_locale, default_timezone=default_timezone
    )


class TemplateWorkbench:
    """Previews and test sends over one database, renderer, allow-list and set of senders."""

    def __init__(
        self,
        factory: SessionFactory,
        templates: TemplateRenderer,
        *,
        allowlist: list[str],
        channels: Callable[[], Mapping[str, Channel]],
        now: Callable[[], datetime],
        default_timezone: str,
    ) -> None:
        """Build a workbench; nothing is read or sent until asked.

        Args:
            factory: Sessions on the store (users, coupons, the ledger).
            templates: The renderer, with the configured locale, timezone and opt-out text.
            allowlist: Where test sends may go (``Settings.test_send_allowlist``).
            channels: Builds the configured sender of every kind; called per test send.
            now: The clock (which coupon is still usable, the ledger's times).
            default_timezone: A user's timezone when their profile names none.
        """
        self._factory = factory
        self._default_timezone = default_timezone
        self.templates = templates
        self.allowlist = allowlist
        self._channels = channels
        self._now = now

    def context(self, user_id: str | None) -> dict[str, Any] | None:
        """The sample context, or the user's (None when there is no such user)."""
        if not user_id:
            return sample_context()
        with self._factory() as session:
            return real_user_context(
                session,
                user_id=user_id,
                now=self._now(),
                default_locale=self.templates.default_locale,
                default_timezone=self._default_timezone,
            )

    def preview(self, name: str, context: Mapping[str, Any]) -> TemplatePreview:
        """Every locale of ``name`` rendered for ``context``."""
        return preview(self.templates, name, context=context)

    def send_test(
        self, name: str, *, context: Mapping[str, Any], locale: str | None, to: str
    ) -> SendTestOutcome:
        """Render ``name`` for ``context`` in ``locale`` and send it to ``to`` through the
        configured provider; the ledger row is written first, as for every send.

        Raises:
            SendTestRefused: No allow-list is set, or ``to`` is not on it for the channel.
            TemplateError: The template cannot be rendered.
        """
        channel = self.templates.channel_of(name)
        if not self.allowlist:
            raise SendTestRefused(
                "test sends are off: list the addresses they may go to in "
                "LIFECYCLE_TEST_SEND_ALLOWLIST"
            )
        if to not in allowed_addresses(self.allowlist, channel):
            raise SendTestRefused(
                f"that address is not on LIFECYCLE_TEST_SEND_ALLOWLIST for {channel}"
            )
        message = self.templates.render(name, channel=channel, locale=locale, context=context)
        outbound = outbound_test(message, to=to)
        with transaction(self._factory) as session:
            row = Message(
                idempotency_key=outbound.key,
                step_id=TEST_STEP,
                channel=channel,
                template=name,
                topic=TEST_TOPIC,
                status="pending",
                created_at=self._now(),
            )
            session.add(row)
            mark_sending(row, now=self._now())
            session.flush()
            message_id = row.id
        sender = self._channels()[channel]
        try:
            result = sender.send(outbound)
        except (PermanentSendError, TransientSendError) as exc:
            reason = exc.reason if isinstance(exc, PermanentSendError) else "provider_unavailable"
            with transaction(self._factory) as session:
                mark_failed(
                    session.get_one(Message, message_id), reason=reason, provider=sender.name
                )
            return SendTestOutcome(message_id, "failed", sender.name, reason=str(exc))
        with transaction(self._factory) as session:
            record_sent(
                session,
                message_id=message_id,
                now=self._now(),
                provider=result.provider,
                provider_message_id=result.provider_message_id,
                segments=message.segments,
            )
        return SendTestOutcome(message_id, "sent", result.provider, result.provider_message_id)

    def outcome(self, message_id: int) -> SendTestOutcome | None:
        """A test send's outcome from its ledger row (None if the row is not a test)."""
        with self._factory() as session:
            row = session.get(Message, message_id)
            if row is None or row.topic != TEST_TOPIC:
                return None
            return SendTestOutcome(
                row.id, row.status, row.provider, row.provider_message_id, row.reason
            )
