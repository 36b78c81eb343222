"""Helpers for sweep tests: a schedule-triggered journey, a population, a sweep worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from temporalio.worker import Worker

from activities.sweeps import SweepActivities
from journey_support import publish_text, router_for
from store.db import SessionFactory, transaction
from store.models import Enrollment, User
from worker import sandbox_runner
from workflows.sweep import SweepWorkflow

# Sweeps whoever has not been seen for 30 days; the run itself only waits, so the tests
# measure entering, not sending.
WINBACK = """\
id: {journey_id}
name: Win-back probe
trigger:
  schedule:
    cron: "{cron}"
    timezone: Asia/Shanghai
    audience: {{last_seen: {{not_within: 30d}}}}
goal: {{event: order_placed, within: 14d}}
re_entry: {{after: 30d}}
steps:
  - {{id: pause, type: wait, duration: 30d}}
"""


def publish_winback(
    factory: SessionFactory,
    now: datetime,
    cron: str = "0 10 * * *",
    journey_id: str = "winback_probe",
) -> None:
    publish_text(factory, WINBACK.format(cron=cron, journey_id=journey_id), now)


def add_population(
    factory: SessionFactory, now: datetime, *, dormant: int, active: int, prefix: str = "u"
) -> list[str]:
    """``dormant`` users last seen 60 days ago (returned, in id order) and ``active`` ones
    seen yesterday, inserted in bulk."""
    rows: list[dict[str, Any]] = []
    for i in range(dormant + active):
        seen = now - timedelta(days=60 if i < dormant else 1)
        kind = "d" if i < dormant else "a"
        rows.append(
            {
                "id": f"{prefix}-{kind}-{i:06d}",
                "created_at": now - timedelta(days=120),
                "updated_at": now,
                "last_seen_at": seen,
                "traits": {},
                "tags": [],
            }
        )
    with transaction(factory) as session:
        for start in range(0, len(rows), 1000):
            session.execute(insert(User), rows[start : start + 1000])
    return sorted(r["id"] for r in rows[:dormant])


def entered_users(factory: SessionFactory, journey_id: str = "winback_probe") -> list[str]:
    with transaction(factory) as session:
        stmt = select(Enrollment.user_id).where(Enrollment.journey_id == journey_id)
        return sorted(session.scalars(stmt))


def enrollments_per_user(factory: SessionFactory, journey_id: str = "winback_probe") -> int:
    """The most enrollments any one user has in the journey."""
    with transaction(factory) as session:
        per_user = (
            select(func.count().label("n"))
            .where(Enrollment.journey_id == journey_id)
            .group_by(Enrollment.user_id)
            .subquery()
        )
        return session.scalar(select(func.max(per_user.c.n))) or 0


@asynccontextmanager
async def sweep_worker(env: Any, db: Any, task_queue: str) -> AsyncIterator[str]:
    """A worker running sweeps on ``task_queue``; the journeys they start go to a queue of
    their own that nobody polls (so only entering is measured). Yields that queue."""
    journeys_queue = f"{task_queue}-journeys"
    router = router_for(env, db, journeys_queue)
    activities = SweepActivities(db.factory, router)
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[SweepWorkflow],
        activities=[activities.sweep_page],
        workflow_runner=sandbox_runner(),
    ):
        yield journeys_queue
