"""Forgetting a user (PIPL / GDPR erasure): nothing that identifies them stays.

The profile, contact details, push tokens, consents and coupons go; the user's events keep
their name and time but lose their properties and context; ledger rows and the outbox lose
the user and the rendered content; enrollments keep only a random pseudonym. What remains
are anonymous counts, so reports stay right.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from store.models import Enrollment, Event, Message, OutboxMessage, User


@dataclass(frozen=True)
class Erasure:
    found: bool
    open_runs: list[str]  # workflow ids to end


def forget_user(session: Session, *, user_id: str, now: datetime) -> Erasure:
    """Erase ``user_id``; the workflow ids of runs that were still open are returned so the
    caller can end them (they would only skip every send now: the profile is gone)."""
    pseudonym = f"erased:{uuid.uuid4().hex}"
    found = session.get(User, user_id) is not None
    open_runs = list(
        session.scalars(
            select(Enrollment.workflow_id).where(
                Enrollment.user_id == user_id, Enrollment.exited_at.is_(None)
            )
        )
    )
    keys = select(Message.idempotency_key).where(Message.user_id == user_id)
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.message_key.in_(keys))
        .values(recipient="erased", subject=None, body="", html=None, data={})
    )
    session.execute(update(Message).where(Message.user_id == user_id).values(user_id=None))
    session.execute(
        update(Enrollment)
        .where(Enrollment.user_id == user_id, Enrollment.exited_at.is_(None))
        .values(exited_at=now, exit_reason="erased")
    )
    session.execute(
        update(Enrollment).where(Enrollment.user_id == user_id).values(user_id=pseudonym)
    )
    session.execute(
        update(Event)
        .where(Event.user_id == user_id)
        .values(user_id=pseudonym, anonymous_id=None, properties={}, context={}, routed_at=now)
    )
    session.execute(delete(User).where(User.id == user_id))  # tokens, consents, coupons cascade
    found = found or bool(open_runs)
    return Erasure(found=found, open_runs=open_runs)
