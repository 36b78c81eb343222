"""A journey whose runs wait at different steps (a timer, an event, a held send), entered by
users through the real router and worked by the real worker, for the who-is-where tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from config import Settings
from enrollment.runs_admin import RunsAdmin, Whereabouts
from journey_support import add_user, publish_text, router_for, store_event
from store.db import SessionFactory
from store.models import Enrollment, Event
from support import assert_eventually_async
from worker import running_worker

JOURNEY_ID = "who_is_where"
# wechat sign-ups wait for a product view, phone sign-ups get a push held by the journey's
# quiet hours, the others nap for two days.
JOURNEY = """\
id: who_is_where
name: Who is where
description: Runs waiting at different steps.
trigger:
  event: user_signed_up
exit_on: [account_deleted]
delivery:
  quiet_hours: "{window}"
steps:
  - id: route
    type: branch
    if: {{context: trigger.properties.method, eq: wechat}}
    then:
      - id: await_view
        type: wait_for
        event: product_viewed
        timeout: 3d
    else:
      - id: by_phone
        type: branch
        if: {{context: trigger.properties.method, eq: phone}}
        then:
          - id: held_push
            type: send
            channel: push
            template: cart_reminder_push
        else:
          - id: nap
            type: wait
            duration: 2d
"""
# Where each kind of sign-up waits, and for how long from its entry.
PLACES = {"wechat": "await_view", "email": "nap", "phone": "held_push"}


def quiet_now(at: datetime) -> str:
    """Quiet hours around ``at`` in the users' zone (Asia/Shanghai): a send now is held."""
    local = at.astimezone(ZoneInfo("Asia/Shanghai"))
    return f"{local - timedelta(hours=1):%H:%M}-{local + timedelta(hours=3):%H:%M}"


async def settled_where(admin: RunsAdmin, expected: dict[str, int]) -> Whereabouts:
    """Wait until the journey's runs are at the ``expected`` steps (step: count)."""
    found: list[Whereabouts] = []

    async def arrived() -> bool:
        where = await admin.where(JOURNEY_ID)
        counts = {s.step: s.count for s in where.steps if s.count}
        assert counts == expected, f"runs at {counts}, expected {expected}"
        found.append(where)
        return True

    await assert_eventually_async(arrived, timeout=30)
    return found[-1]


@asynccontextmanager
async def journey_running(
    env: Any, db: Any, task_queue: str, users: dict[str, str]
) -> AsyncIterator[datetime]:
    """The journey published, a worker running, and ``users`` (id: sign-up method) entered
    and at their steps; yields the entry time."""
    factory = db.factory
    t0 = await env.get_current_time()
    publish_text(factory, JOURNEY.format(window=quiet_now(t0)), t0)
    router = router_for(env, db, task_queue)
    settings = Settings(environment="development")
    async with running_worker(env.client, settings, factory, task_queue=task_queue):
        for user, method in users.items():
            add_user(factory, user, t0)
            event = store_event(factory, user, "user_signed_up", t0, properties={"method": method})
            await router.route([event])
        expected: dict[str, int] = {}
        for method in users.values():
            expected[PLACES[method]] = expected.get(PLACES[method], 0) + 1
        await settled_where(RunsAdmin(factory=factory, client=env.client), expected)
        yield t0


def exits(factory: SessionFactory) -> dict[str, str | None]:
    """Each user's exit reason in the journey (None while the run is open)."""
    with factory() as session:
        rows = session.scalars(select(Enrollment).where(Enrollment.journey_id == JOURNEY_ID))
        return {r.user_id: r.exit_reason for r in rows}


async def exited(factory: SessionFactory, expected: dict[str, str | None]) -> None:
    def recorded() -> bool:
        assert exits(factory) == expected
        return True

    await assert_eventually_async(recorded, timeout=30)


def ejections(factory: SessionFactory) -> dict[str, dict[str, Any]]:
    """The journey_ejected facts, by user: their properties."""
    with factory() as session:
        rows = session.scalars(select(Event).where(Event.event == "journey_ejected"))
        return {r.user_id or "": dict(r.properties) for r in rows}
