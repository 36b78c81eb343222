"""How a journey's runs stand: how many are running, how many ended and why; and the facts
that record a person ejecting runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Enrollment, Event
from store.reports import EJECTED
from store.upsert import insert_ignore_many


@dataclass(frozen=True)
class EjectedRun:
    """One ejected run: its enrollment, its user, and the step it was at."""

    enrollment_id: int
    user_id: str
    step: str | None


def record_ejections(
    session: Session,
    *,
    journey_id: str,
    runs: Iterable[EjectedRun],
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    """One ``journey_ejected`` event per run, stored once whoever writes it first (the
    person's command right after the signal, or the run as it exits), routed already so no
    journey acts on it."""
    rows = [
        {
            "message_id": f"journey-ejected:{run.enrollment_id}",
            "type": "track",
            "user_id": run.user_id,
            "event": EJECTED,
            "properties": {
                "journey_id": journey_id,
                "step": run.step,
                "actor": actor,
                "reason": reason,
            },
            "context": {},
            "timestamp": now,
            "received_at": now,
            "routed_at": now,
        }
        for run in runs
    ]
    insert_ignore_many(session, Event, rows=rows)  # one statement for the lot


@dataclass(frozen=True)
class RunCounts:
    """A journey's runs: still running, and ended by exit reason."""

    running: int
    ended: dict[str, int]


def run_counts(session: Session, *, journey_id: str) -> RunCounts:
    """Count the runs of ``journey_id`` (every version): open ones, and ended ones by reason."""
    rows = session.execute(
        select(Enrollment.exit_reason, func.count())
        .where(Enrollment.journey_id == journey_id)
        .group_by(Enrollment.exit_reason)
    ).all()
    counts: dict[str | None, int] = {reason: n for reason, n in rows}
    running = counts.pop(None, 0)
    return RunCounts(running=running, ended={str(k): v for k, v in counts.items()})
