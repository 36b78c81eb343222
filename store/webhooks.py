"""Data access for delivery facts: ledger status moves, provider events, consent changes,
dead push tokens.

Functions take a session and never commit; the webhook handler owns the transaction. Every
change is a conditional ``UPDATE`` (or an ``INSERT ... ON CONFLICT``), so two callbacks for
one message racing each other cannot move its status backwards, and a consent change or a
token removal older than the fact stored does not replace it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, func, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kinds import lesson
from store.ledger import COUNTED_STATUSES, SendStatus
from store.models import Consent, Message, ProviderEvent, PushToken, User
from store.upsert import insert_ignore

# A message's life as the providers report it; a status only ever moves to the right.
# ``sending``: ``deliver`` passed the policy and is calling the provider.
PROGRESS: tuple[str, ...] = (SendStatus.PENDING, *COUNTED_STATUSES)
# Terminal failures a provider reports; reachable only before anything was delivered.
FAILURES: tuple[str, ...] = (SendStatus.FAILED, SendStatus.UNDELIVERED, SendStatus.BOUNCED)
_NOT_YET_DELIVERED = PROGRESS[: PROGRESS.index("delivered")]
# Topics a channel-wide change ("STOP") covers, besides those a user already has rows for.
TOPICS: tuple[str, ...] = ("marketing", "transactional")

_FIRST_SEEN = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "opened": "opened_at",
    "clicked": "clicked_at",
}
_REASON_LENGTH = 64


@dataclass(frozen=True)
class LedgerRef:
    """The ledger row a provider fact is about."""

    id: int
    user_id: str | None


def find_message(
    session: Session,
    *,
    provider: str,
    idempotency_key: str | None = None,
    provider_message_id: str | None = None,
) -> LedgerRef | None:
    """The ledger row with ``idempotency_key``, else the one ``provider`` knows by its id."""
    if idempotency_key:
        row = session.execute(
            select(Message.id, Message.user_id).where(Message.idempotency_key == idempotency_key)
        ).first()
        if row is not None:
            return LedgerRef(row.id, row.user_id)
    if provider_message_id:
        row = session.execute(
            select(Message.id, Message.user_id)
            .where(
                Message.provider_message_id == provider_message_id,
                Message.provider == provider,
            )
            .order_by(Message.id)
            .limit(1)
        ).first()
        if row is not None:
            return LedgerRef(row.id, row.user_id)
    return None


def advance_status(
    session: Session,
    *,
    message_id: int,
    status: str,
    at: datetime,
    reason: str | None = None,
) -> bool:
    """Move a message to ``status`` if that is forward; True if its status changed.

    A progress status (``sent`` … ``clicked``) applies to a message behind it, and its first
    time is kept (``delivered_at`` …) even when the status is already further on. A failure
    (``failed``, ``undelivered``, ``bounced``) applies to a pending, sending or sent message
    only, with ``reason`` and ``failed_at``; it is terminal.
    """
    values: dict[str, Any] = {"status": status}
    if status in PROGRESS[PROGRESS.index("sent") :]:
        before = PROGRESS[: PROGRESS.index(status)]
    elif status in FAILURES:
        before = _NOT_YET_DELIVERED
        values["failed_at"] = at
        if reason:
            values["reason"] = reason[:_REASON_LENGTH]
    else:
        raise ValueError(f"{status!r} is not a status a provider reports")
    result = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status.in_(before))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    first_seen = _FIRST_SEEN.get(status)
    if first_seen is not None:
        column = getattr(Message, first_seen)
        session.execute(
            update(Message)
            .where(Message.id == message_id, column.is_(None), Message.status.in_(PROGRESS))
            .values({first_seen: at})
            .execution_options(synchronize_session=False)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_provider_event(
    session: Session,
    *,
    provider: str,
    provider_event_id: str,
    kind: str,
    received_at: datetime,
    message_id: int | None = None,
    occurred_at: datetime | None = None,
) -> bool:
    """Store one provider event; False if it was stored before (a retried webhook)."""
    return insert_ignore(
        session,
        ProviderEvent,
        values={
            "provider": provider,
            "provider_event_id": provider_event_id[:255],
            "kind": kind[:32],
            "message_id": message_id,
            "occurred_at": occurred_at,
            "received_at": received_at,
        },
    )


def hold_status(
    session: Session,
    *,
    provider: str,
    provider_message_id: str,
    provider_event_id: str,
    status: str,
    received_at: datetime,
    reason: str | None = None,
) -> bool:
    """Keep a status report for a message the ledger does not know by its provider id yet.

    A provider can report on a message before the send's own ledger update has stored the
    id it answered with (Twilio calls back within a second). The report is stored as a
    provider event with no message, ``kind`` being the ledger status (and ``:reason``), and
    :func:`apply_held_statuses` applies it once the id is known. False if it was stored before.
    """
    if not provider_event_id.startswith(f"{provider_message_id}:"):
        raise ValueError("a held status's event id starts with its provider message id")
    kind = f"{status}:{reason}" if reason else status
    return record_provider_event(
        session,
        provider=provider,
        provider_event_id=provider_event_id,
        kind=kind,
        received_at=received_at,
    )


# A held report whose message id the ledger has not learnt in this long never will: a send
# records its provider id within seconds, a retried send's reconciliation within minutes.
HELD_STATUS_LIFETIME = timedelta(days=7)


def purge_unclaimed_statuses(session: Session, *, provider: str, before: datetime) -> int:
    """Delete the status reports held (see :func:`hold_status`) since before ``before`` and
    never claimed: reports about messages that are not ours, or whose send never stored the
    id. Inbound keyword reports (``inbound:…``, kept as consent evidence) are left alone.

    Returns:
        How many were deleted.
    """
    result = session.execute(
        delete(ProviderEvent)
        .where(
            ProviderEvent.provider == provider,
            ProviderEvent.message_id.is_(None),
            ProviderEvent.received_at < before,
            ~ProviderEvent.provider_event_id.startswith("inbound:", autoescape=True),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class HeldStatus:
    """A status report applied after the fact (see :func:`hold_status`)."""

    status: str
    reason: str | None
    received_at: datetime
    moved: bool


def apply_held_statuses(
    session: Session, *, provider: str, provider_message_id: str
) -> list[HeldStatus]:
    """Apply the status reports held for ``provider_message_id``, if the ledger knows it now.

    Each held report is claimed by a conditional update (its ``message_id`` set), so the
    webhook and the send racing to apply it apply it once. Applied in the order received,
    at the time received; a status still moves forward only. Both sides call this after
    committing their own write, so whichever commits second finds the other's.

    Returns:
        The reports applied (empty when there were none, or the id is still unknown).
    """
    ref = find_message(session, provider=provider, provider_message_id=provider_message_id)
    if ref is None:
        return []
    held = session.execute(
        select(ProviderEvent.id, ProviderEvent.kind, ProviderEvent.received_at)
        .where(
            ProviderEvent.provider == provider,
            ProviderEvent.message_id.is_(None),
            ProviderEvent.provider_event_id.startswith(f"{provider_message_id}:", autoescape=True),
        )
        .order_by(ProviderEvent.received_at, ProviderEvent.id)
    ).all()
    applied = []
    for event_id, kind, received_at in held:
        claimed = session.execute(
            update(ProviderEvent)
            .where(ProviderEvent.id == event_id, ProviderEvent.message_id.is_(None))
            .values(message_id=ref.id)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            continue
        status, _, reason = kind.partition(":")
        moved = advance_status(
            session, message_id=ref.id, status=status, at=received_at, reason=reason or None
        )
        applied.append(HeldStatus(status, reason or None, received_at, moved))
        if reason and ref.user_id:
            channel = session.scalar(select(Message.channel).where(Message.id == ref.id))
            if channel and lesson(channel, reason) == "consent_lost":
                # The provider says the recipient opted out: nothing more on this channel.
                set_consent(
                    session,
                    user_ids=[ref.user_id],
                    channel=channel,
                    status="unsubscribed",
                    source="provider_opt_out",
                    at=received_at,
                )
    return applied


def users_with_phone(session: Session, *, phone: str) -> list[str]:
    """Ids of the users whose E.164 number is ``phone``."""
    return list(session.scalars(select(User.id).where(User.phone == phone).order_by(User.id)))


def users_with_email(session: Session, *, email: str) -> list[str]:
    """Ids of the users whose address is ``email`` (compared case-insensitively)."""
    stmt = select(User.id).where(func.lower(User.email) == email.strip().lower())
    return list(session.scalars(stmt.order_by(User.id)))


def record_consent(
    session: Session,
    *,
    user_id: str,
    channel: str,
    topic: str,
    status: str,
    source: str,
    at: datetime,
) -> bool:
    """Store one consent fact that happened ``at``, unless the row holds a newer one.

    Facts arrive out of order (a provider's webhook a day late, a device's queued identify
    call), so the row keeps the latest by event time, not by arrival: an older fact changes
    nothing, and at the same instant ``unsubscribed`` beats ``subscribed`` (when in doubt,
    do not message).

    Args:
        session: the caller's transaction; the user must exist.
        user_id: whose consent.
        channel: ``sms``, ``email`` or ``push``.
        topic: ``marketing``, ``transactional``, ...
        status: ``subscribed`` or ``unsubscribed``.
        source: what said so (``sms_keyword``, ``unsubscribe_link``, ``identify``, ...).
        at: when it happened.

    Returns:
        True if the fact was stored, False if the row already held a newer one.
    """
    table: Table = Consent.__table__  # type: ignore[assignment]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values(
        user_id=user_id, channel=channel, topic=topic, status=status, source=source, updated_at=at
    )
    stored, new = table.c, stmt.excluded
    newer = or_(
        stored.updated_at < new.updated_at,
        and_(stored.updated_at == new.updated_at, new.status == "unsubscribed"),
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=["user_id", "channel", "topic"],
        set_={"status": new.status, "source": new.source, "updated_at": new.updated_at},
        where=newer,
    )
    # RETURNING, not rowcount (-1 on PostgreSQL for an INSERT): a refused update returns no row.
    return session.execute(upsert.returning(literal_column("1"))).first() is not None


def set_consent(
    session: Session,
    *,
    user_ids: Iterable[str],
    channel: str,
    status: str,
    source: str,
    at: datetime,
    topics: Sequence[str] | None = None,
) -> int:
    """Subscribe or unsubscribe users from ``channel`` as of ``at``; the number of users changed.

    Each topic's row takes the change only if it is not older than what the row holds (see
    :func:`record_consent`). ``topics`` None means every topic: the known ones and any the
    user already has a row for. Ids of users that do not exist are passed over.
    """
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return 0
    existing = list(session.scalars(select(User.id).where(User.id.in_(wanted))))
    changed = 0
    for user_id in existing:
        chosen = list(topics) if topics is not None else _all_topics(session, user_id, channel)
        stored = [
            record_consent(
                session,
                user_id=user_id,
                channel=channel,
                topic=topic,
                status=status,
                source=source,
                at=at,
            )
            for topic in chosen
        ]
        changed += any(stored)
    return changed


def _all_topics(session: Session, user_id: str, channel: str) -> list[str]:
    stmt = select(Consent.topic).where(Consent.user_id == user_id, Consent.channel == channel)
    return list(dict.fromkeys([*TOPICS, *session.scalars(stmt)]))


def forget_push_token(session: Session, *, token: str, at: datetime) -> bool:
    """Delete ``token`` (the push provider said at ``at`` that it is dead), unless it was
    registered after ``at``: a registration newer than the removal stands.

    Returns:
        True if the token was deleted.
    """
    registered = func.coalesce(PushToken.registered_at, PushToken.created_at)
    result = session.execute(
        delete(PushToken)
        .where(PushToken.token == token, registered <= at)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
