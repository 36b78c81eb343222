"""The send ledger: one ``messages`` row per send, keyed by its idempotency key, written
before any provider call.

A row's status moves ``pending`` → ``sending`` (passed the policy: counted by frequency
caps, handed to the provider) → ``sent``, or ends ``skipped`` / ``failed`` with a reason;
a ``pending`` row held by the policy says why and until when (``reason``,
``deferred_until``). Providers' reports move a sent row on later (:mod:`store.webhooks`).

Every function works in the caller's session and never commits: the caller owns the
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, case, func, select, update
from sqlalchemy.orm import Session

from store.models import Message, User
from store.upsert import insert_ignore_many, insert_new


class SendStatus(StrEnum):
    """Where a ledger row stands."""

    PENDING = "pending"  # written; not decided yet, or held (``deferred_until``)
    SENDING = "sending"  # passed the policy; the provider call is due or under way
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    SKIPPED = "skipped"  # the policy said no, with its reason
    FAILED = "failed"
    UNDELIVERED = "undelivered"  # the carrier did not deliver the SMS
    BOUNCED = "bounced"  # the receiving mail server refused it


# Taken by the provider (and possibly reported on since).
SENT_STATUSES: tuple[SendStatus, ...] = (
    SendStatus.SENT,
    SendStatus.DELIVERED,
    SendStatus.OPENED,
    SendStatus.CLICKED,
)
# Reached, or reaching, the user: what frequency caps count.
COUNTED_STATUSES: tuple[SendStatus, ...] = (SendStatus.SENDING, *SENT_STATUSES)
# The topic that frequency caps count (transactional sends are never capped).
MARKETING = "marketing"

_LEDGER: Table = Message.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class NewSend:
    """A send's ledger row as first written (``pending``): who gets what, and for which
    journey step or broadcast."""

    key: str
    user_id: str
    channel: str
    template: str
    topic: str
    created_at: datetime
    enrollment_id: int | None = None
    journey_id: str | None = None
    step_id: str | None = None
    variant: str | None = None
    broadcast_id: int | None = None

    def values(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.key,
            "enrollment_id": self.enrollment_id,
            "journey_id": self.journey_id,
            "step_id": self.step_id,
            "user_id": self.user_id,
            "channel": self.channel,
            "template": self.template,
            "variant": self.variant,
            "topic": self.topic,
            "broadcast_id": self.broadcast_id,
            "status": SendStatus.PENDING,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class RecentSend:
    """A counted marketing send of a user: what frequency caps look at."""

    channel: str
    sent_at: datetime


def open_send(session: Session, *, send: NewSend) -> Message:
    """The ledger row of ``send.key``, written ``pending`` if new, and locked."""
    row = insert_new(session, Message, values=send.values())
    if row is not None:
        return row  # inserted by this transaction: nobody else sees it until it ends
    stmt = select(Message).where(Message.idempotency_key == send.key)
    return session.scalars(stmt.with_for_update()).one()


def open_sends(session: Session, *, sends: Sequence[NewSend]) -> dict[str, Message]:
    """The ledger rows of ``sends`` by key, the new ones written in one statement, all
    read (locked) in one."""
    insert_ignore_many(session, Message, rows=[s.values() for s in sends])
    keys = [s.key for s in sends]
    stmt = select(Message).where(Message.idempotency_key.in_(keys)).with_for_update()
    return {row.idempotency_key: row for row in session.scalars(stmt)}


def find_send(session: Session, *, key: str) -> Message:
    """The ledger row of ``key`` (it must exist)."""
    return session.scalars(select(Message).where(Message.idempotency_key == key)).one()


def find_sends(session: Session, *, keys: Sequence[str]) -> dict[str, Message]:
    """The ledger rows of ``keys`` that exist, by key."""
    stmt = select(Message).where(Message.idempotency_key.in_(keys))
    return {row.idempotency_key: row for row in session.scalars(stmt)}


def lock_recipients(session: Session, *, user_ids: Sequence[str]) -> None:
    """Lock the users' rows until the transaction ends, so two sends to one user that
    count their recent sends take turns: the second sees the first's ``sending`` row."""
    if user_ids:
        session.execute(
            update(User).where(User.id.in_(user_ids)).values(updated_at=User.updated_at)
        )


def recent_sends(
    session: Session, *, user_id: str, since: datetime, excluding: int
) -> tuple[RecentSend, ...]:
    """The user's counted marketing sends after ``since``, newest first, except the row
    ``excluding`` (the send being decided)."""
    stmt = (
        select(Message.channel, Message.sent_at)
        .where(
            Message.user_id == user_id,
            Message.topic == MARKETING,
            Message.status.in_(COUNTED_STATUSES),
            Message.sent_at > since,
            Message.id != excluding,
        )
        .order_by(Message.sent_at.desc())
    )
    return tuple(
        RecentSend(channel, sent_at) for channel, sent_at in session.execute(stmt) if sent_at
    )


def users_with_recent_sends(
    session: Session, *, user_ids: Sequence[str], since: datetime
) -> set[str]:
    """Those of ``user_ids`` with a counted marketing send after ``since``."""
    stmt = select(Message.user_id).where(
        Message.user_id.in_(user_ids),
        Message.topic == MARKETING,
        Message.status.in_(COUNTED_STATUSES),
        Message.sent_at > since,
    )
    return {user_id for user_id in session.scalars(stmt) if user_id is not None}


def mark_sending(row: Message, *, now: datetime) -> None:
    """The row passed the policy: counted by frequency caps from now on, even if the
    provider is slow. A hold it was under is over."""
    row.status, row.sent_at = SendStatus.SENDING, now
    row.reason, row.deferred_until = None, None


def mark_skipped(row: Message, *, reason: str) -> None:
    row.status, row.reason = SendStatus.SKIPPED, reason


def mark_held(row: Message, *, reason: str, until: datetime) -> None:
    """The row stays ``pending`` and says why and until when (the timeline, the console
    and ``broadcast status`` show it) until a later decision sends it."""
    row.reason, row.deferred_until = reason, until


def mark_failed(row: Message, *, reason: str, provider: str | None = None) -> None:
    row.status, row.reason, row.provider = SendStatus.FAILED, reason, provider


def record_failed(
    session: Session, *, message_id: int, reason: str, provider: str | None = None
) -> None:
    """The send of ``message_id`` failed for ``reason``."""
    mark_failed(session.get_one(Message, message_id), reason=reason, provider=provider)


def record_sent(
    session: Session,
    *,
    message_id: int,
    now: datetime,
    provider: str,
    provider_message_id: str | None,
    segments: int | None = None,
) -> None:
    """The provider took the message: ``sent``, unless a webhook already moved it on.
    ``segments``: the SMS segments it is billed as (None for a kind not sent in segments)."""
    ledger = _LEDGER.c
    # A Core statement on the session's connection: no ORM synchronisation of a session
    # that holds no row.
    session.connection().execute(
        update(_LEDGER)
        .where(ledger.id == message_id)
        .values(
            status=case(
                (ledger.status == SendStatus.SENDING, SendStatus.SENT), else_=ledger.status
            ),
            sent_at=now,
            provider=provider,
            provider_message_id=provider_message_id,
            # A count the provider reported first (a status callback) is its own billing.
            segments=func.coalesce(ledger.segments, segments),
        )
    )
