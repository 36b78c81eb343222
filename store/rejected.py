"""The dead-letter table: calls the API refused and events the router parked.

Data access only: every function takes a session and never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.models import RejectedEvent

Stage = Literal["ingest", "route"]
# Field paths are kept to the column's width; the raw call keeps the whole story.
_FIELD_WIDTH = 512


@dataclass(frozen=True)
class Rejection:
    """One row to add: where it was refused, what was sent, and why."""

    stage: Stage
    source: str
    reason: str
    raw: str
    message_id: str | None = None
    field: str | None = None
    event_id: int | None = None
    attempts: int = 1


def add_rejections(session: Session, *, rows: Sequence[Rejection], at: datetime) -> None:
    """Insert dead-letter rows received at ``at``."""
    if not rows:
        return
    session.add_all(
        RejectedEvent(
            stage=row.stage,
            source=row.source[:64],
            message_id=row.message_id,
            field=row.field[:_FIELD_WIDTH] if row.field else None,
            reason=row.reason,
            raw=row.raw,
            event_id=row.event_id,
            attempts=row.attempts,
            received_at=at,
        )
        for row in rows
    )


def list_rejected(
    session: Session,
    *,
    since: datetime | None = None,
    stage: Stage | None = None,
    pending_only: bool = False,
    limit: int = 100,
) -> list[RejectedEvent]:
    """The newest rows first, optionally since an instant, of one stage, not yet replayed."""
    stmt = select(RejectedEvent).order_by(RejectedEvent.id.desc()).limit(limit)
    if since is not None:
        stmt = stmt.where(RejectedEvent.received_at >= since)
    if stage is not None:
        stmt = stmt.where(RejectedEvent.stage == stage)
    if pending_only:
        stmt = stmt.where(RejectedEvent.replayed_at.is_(None))
    return list(session.scalars(stmt))


def pending_counts(session: Session) -> dict[str, int]:
    """How many rows of each stage wait for a replay (``{"ingest": n, "route": m}``)."""
    stmt = (
        select(RejectedEvent.stage, func.count())
        .where(RejectedEvent.replayed_at.is_(None))
        .group_by(RejectedEvent.stage)
    )
    counts = {"ingest": 0, "route": 0}
    counts.update({stage: n for stage, n in session.execute(stmt).all()})
    return counts


def mark_replayed(session: Session, *, rejected_id: int, at: datetime, result: str) -> None:
    """Record a replay's outcome (``result`` says what it became)."""
    session.execute(
        update(RejectedEvent)
        .where(RejectedEvent.id == rejected_id)
        .values(replayed_at=at, replay_result=result)
    )


__all__ = [
    "Rejection",
    "Stage",
    "add_rejections",
    "list_rejected",
    "mark_replayed",
    "pending_counts",
]
