"""The ``broadcasts`` table and a broadcast's sends in the ledger (``messages``).

Functions take a session and never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.models import Broadcast, Message

# A broadcast's status once it can no longer change.
FINAL_STATUSES = ("completed", "cancelled")
# The ledger reason of a member held out of a broadcast (a journey's holdout's too).
HELD_OUT = "held_out"


def create_broadcast(
    session: Session,
    *,
    name: str,
    audience: Any,
    audience_source: str,
    template: str,
    channel: str,
    topic: str,
    send_at: datetime,
    rate_per_second: float | None,
    now: datetime,
    workflow_id: Callable[[int], str],
    holdout: float = 0,
) -> Broadcast:
    """A new ``scheduled`` broadcast; its workflow id is ``workflow_id`` of its id (known once
    the row is flushed), as the workflows' id builder writes it. ``holdout``: the percent of
    the audience held out for the broadcast's review."""
    row = Broadcast(
        name=name,
        audience=audience,
        audience_source=audience_source,
        template=template,
        channel=channel,
        topic=topic,
        send_at=send_at,
        rate_per_second=rate_per_second,
        holdout=holdout,
        status="scheduled",
        # Unique and not null: a placeholder until the id is known (same transaction).
        workflow_id=f"broadcast:new:{now.timestamp()}:{id(session)}",
        created_at=now,
    )
    session.add(row)
    session.flush()
    row.workflow_id = workflow_id(row.id)
    return row


def list_broadcasts(session: Session, *, limit: int = 50) -> list[Broadcast]:
    """The most recent broadcasts, newest first."""
    stmt = select(Broadcast).order_by(Broadcast.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def message_counts(session: Session, *, broadcast_id: int) -> dict[tuple[str, str | None], int]:
    """The broadcast's ledger rows counted by (status, reason)."""
    stmt = (
        select(Message.status, Message.reason, func.count())
        .where(Message.broadcast_id == broadcast_id)
        .group_by(Message.status, Message.reason)
    )
    return {(status, reason): n for status, reason, n in session.execute(stmt)}


def held_sends(session: Session, *, broadcast_id: int) -> tuple[int, datetime | None]:
    """How many of the broadcast's sends are held for later (quiet hours), and the
    earliest instant one of them is due to be asked again."""
    stmt = select(func.count(), func.min(Message.deferred_until)).where(
        Message.broadcast_id == broadcast_id,
        Message.status == "pending",
        Message.deferred_until.is_not(None),
    )
    count, earliest = session.execute(stmt).one()
    return int(count), earliest


def due_sends(
    session: Session, *, broadcast_id: int, now: datetime, limit: int
) -> list[tuple[str | None, str]]:
    """Held sends due at ``now``: (user id, ledger key), oldest row first."""
    stmt = (
        select(Message.user_id, Message.idempotency_key)
        .where(
            Message.broadcast_id == broadcast_id,
            Message.status == "pending",
            Message.deferred_until <= now,
        )
        .order_by(Message.id)
        .limit(limit)
    )
    return [(user_id, key) for user_id, key in session.execute(stmt)]


def record_progress(
    session: Session,
    *,
    broadcast_id: int,
    status: str,
    recipients: int,
    cursor: str | None,
    finished_at: datetime | None,
) -> None:
    """Save what the broadcast's workflow reports; a cancelled broadcast's unsent rows
    (held, or passed but never handed over) are closed as skipped ``cancelled``."""
    row = session.get_one(Broadcast, broadcast_id)
    row.status, row.recipients, row.cursor = status, recipients, cursor
    if finished_at is not None:
        row.finished_at = finished_at
    if status == "cancelled":
        session.execute(
            update(Message)
            .where(
                Message.broadcast_id == broadcast_id,
                Message.status.in_(("pending", "sending")),
            )
            .values(status="skipped", reason="cancelled")
        )
