"""No single event stops the router: a poisoned event between good ones is parked after a
few attempts, and the good ones route at once, on SQLite and PostgreSQL with a real
Temporal server."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from journey_support import add_user, enrollments, publish_shipped, router_for, store_event
from store.models import Event, RejectedEvent
from workflows.ids import journey_workflow_id


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def parked(db: Any) -> list[RejectedEvent]:
    with db.factory() as session:
        return list(session.scalars(select(RejectedEvent).order_by(RejectedEvent.id)))


def event_row(db: Any, event_id: int) -> Event:
    with db.factory() as session:
        row = session.get(Event, event_id)
        assert row is not None
        return row


async def test_a_poisoned_event_between_two_good_ones(time_env, db, task_queue) -> None:
    env = time_env
    t0 = await env.get_current_time()
    publish_shipped(db.factory, "new_user_coupon", t0)
    publish_shipped(db.factory, "cart_abandonment", t0)
    users = [f"{task_queue}-{name}" for name in ("before", "poison", "after", "later")]
    for user in users:
        add_user(db.factory, user, t0)
    # Stored before the API bounded depth: more than a payload converter can encode, in a
    # property the journey uses (its push names the cart's items), so it travels to the run.
    poison = {"cart_id": "c1", "items": nested(300)}
    ids = [
        store_event(db.factory, users[0], "user_signed_up", t0),
        store_event(db.factory, users[1], "cart_updated", t0, properties=poison),
        store_event(db.factory, users[2], "user_signed_up", t0),
    ]
    router = router_for(env, db, task_queue, max_attempts=3)

    await router.route(ids)  # returns: the poisoned event's failure is its own

    for user in (users[0], users[2]):
        [entry] = enrollments(db.factory, user)
        handle = env.client.get_workflow_handle(journey_workflow_id("new_user_coupon", user))
        assert (await handle.describe()).id == entry.workflow_id
        assert event_row(db, ids[0]).routed_at is not None
    poisoned = event_row(db, ids[1])
    assert poisoned.routed_at is None and poisoned.route_attempts == 1
    assert parked(db) == []

    # The pending-event loop tries it again until the limit, then passes it by.
    for _ in range(3):
        await router.route_pending(older_than=timedelta(0))
    [row] = parked(db)
    assert (row.stage, row.event_id, row.attempts) == ("route", ids[1], 3)
    assert "serializ" in row.reason.lower()
    assert json.loads(row.raw)["userId"] == users[1]
    assert event_row(db, ids[1]).route_attempts == 3
    assert await router.route_pending(older_than=timedelta(0)) == 0

    # The journey keeps enrolling.
    later = store_event(db.factory, users[3], "user_signed_up", t0)
    assert await router.route_pending(older_than=timedelta(0)) == 1
    assert event_row(db, later).routed_at is not None
    assert len(enrollments(db.factory, users[3])) == 1
    assert len(parked(db)) == 1


async def test_a_run_that_cannot_start_does_not_stop_a_sweep_page(time_env, db, task_queue) -> None:
    from enrollment.router import JourneyRouter
    from workflows.contracts import EventSignal

    class OneBadStart(JourneyRouter):
        """A run whose start fails for a reason of its own (as an oversized input would)."""

        async def _start(self, journey, version, user_id, entry, signal):  # type: ignore[no-untyped-def]
            if user_id.endswith("-poison"):
                raise ValueError("this run's input cannot be encoded")
            await super()._start(journey, version, user_id, entry, signal)

    env = time_env
    t0 = await env.get_current_time()
    publish_shipped(db.factory, "dormancy_wakeup", t0)
    users = [f"{task_queue}-{name}" for name in ("a", "poison", "b")]
    for user in users:
        add_user(db.factory, user, t0 - timedelta(days=90))
    router = OneBadStart(
        factory=db.factory,
        client=env.client,
        task_queue=task_queue,
        max_trigger_age=timedelta(days=3650),
    )
    sweep = EventSignal(message_id=f"sweep:{task_queue}", event="audience_sweep", timestamp=t0)

    assert await router.enter_many("dormancy_wakeup", users, trigger=sweep) == 2

    for user in (users[0], users[2]):
        handle = env.client.get_workflow_handle(journey_workflow_id("dormancy_wakeup", user))
        assert (await handle.describe()).status is not None


async def test_an_event_the_batch_cannot_plan_is_routed_apart(time_env, db, task_queue) -> None:
    """The database work of a batch's events is done together, in the transaction that read
    them; one that breaks it (a row whose properties are no object, as a hand-written row
    could be) undoes only that shared step: the others enter once, each on its own."""
    env = time_env
    t0 = await env.get_current_time()
    publish_shipped(db.factory, "new_user_coupon", t0)
    users = [f"{task_queue}-{name}" for name in ("first", "broken", "last")]
    for user in users:
        add_user(db.factory, user, t0)
    ids = [store_event(db.factory, user, "user_signed_up", t0) for user in users]
    with db.factory.begin() as session:
        session.execute(update(Event).where(Event.id == ids[1]).values(properties=[1, 2]))
    router = router_for(env, db, task_queue, max_attempts=3)

    await router.route(ids)

    for user, event_id in ((users[0], ids[0]), (users[2], ids[2])):
        [entry] = enrollments(db.factory, user)
        handle = env.client.get_workflow_handle(entry.workflow_id)
        assert (await handle.describe()).id == entry.workflow_id
        assert event_row(db, event_id).routed_at is not None
    broken = event_row(db, ids[1])
    assert broken.routed_at is None and broken.route_attempts == 1
    assert enrollments(db.factory, users[1]) == []
