"""Sweep ticks: the durable record that makes one sweep per (journey, tick)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.models import Enrollment, SweepTick
from store.upsert import insert_ignore


def claim_tick(
    session: Session, *, journey_id: str, tick: datetime, workflow_id: str, now: datetime
) -> SweepTick:
    """The tick's row, created if it is the first time any replica saw this tick."""
    insert_ignore(
        session,
        SweepTick,
        values={
            "journey_id": journey_id,
            "tick": tick,
            "workflow_id": workflow_id,
            "created_at": now,
        },
    )
    return session.scalars(
        select(SweepTick).where(SweepTick.journey_id == journey_id, SweepTick.tick == tick)
    ).one()


def tick_exists(session: Session, *, workflow_id: str) -> bool:
    """Whether any replica has claimed this sweep."""
    found = session.scalar(select(SweepTick.id).where(SweepTick.workflow_id == workflow_id))
    return found is not None


def mark_started(session: Session, *, workflow_id: str, now: datetime) -> None:
    """The sweep's workflow start was accepted (or found started): no replica tries again."""
    session.execute(
        update(SweepTick)
        .where(SweepTick.workflow_id == workflow_id, SweepTick.started_at.is_(None))
        .values(started_at=now)
    )


def record_progress(
    session: Session,
    *,
    workflow_id: str,
    cursor: str | None,
    members: int,
    entered: int,
    finished_at: datetime | None = None,
    audience_version: int | None = None,
) -> None:
    """How far the sweep has got: its cursor and running totals (and when it finished, and
    the saved audience version it reached)."""
    values: dict[str, object] = {"cursor": cursor, "members": members, "entered": entered}
    if finished_at is not None:
        values["finished_at"] = finished_at
    if audience_version is not None:
        values["audience_version"] = audience_version
    session.execute(update(SweepTick).where(SweepTick.workflow_id == workflow_id).values(values))


def record_failure(session: Session, *, workflow_id: str, error: str, now: datetime) -> None:
    """The sweep stopped for good: why, and when."""
    session.execute(
        update(SweepTick)
        .where(SweepTick.workflow_id == workflow_id)
        .values(error=error[:2000], finished_at=now)
    )


def count_entered(
    session: Session, *, journey_id: str, sweep_id: str, after: str | None, upto: str
) -> int:
    """How many enrollments of ``journey_id`` the sweep created for user ids in
    (``after``, ``upto``] (an index range on the enrollments' unique key)."""
    stmt = select(func.count(Enrollment.id)).where(
        Enrollment.journey_id == journey_id,
        Enrollment.user_id <= upto,
        Enrollment.trigger_message_id == sweep_id,
    )
    if after is not None:
        stmt = stmt.where(Enrollment.user_id > after)
    return session.scalar(stmt) or 0


def recent_ticks(
    session: Session, *, journey_id: str | None = None, limit: int = 20
) -> list[SweepTick]:
    """The newest sweeps first, of one journey or all."""
    stmt = select(SweepTick).order_by(SweepTick.tick.desc(), SweepTick.id.desc()).limit(limit)
    if journey_id is not None:
        stmt = stmt.where(SweepTick.journey_id == journey_id)
    return list(session.scalars(stmt))
