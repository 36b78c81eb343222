"""How a journey's runs stand: how many are running, how many ended and why."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Enrollment


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
