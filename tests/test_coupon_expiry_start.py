"""A coupon the journey issues starts its expiry nudges at once, on the real dev server: the
worker routes the ``coupon_issued`` event it stored as soon as the coupon is committed,
without waiting for the pending-event loop (which only looks at events 30 s old)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from config import Settings
from journey_support import add_user, enrollments, publish_shipped, router_for, store_event, user_in
from store.models import Coupon, Event
from support import assert_eventually_async
from worker import running_worker
from workflows.ids import journey_workflow_id


async def test_issued_coupon_starts_its_expiry_journey(dev_env, db, task_queue):
    now = datetime.now(UTC)
    for journey in ("new_user_coupon", "coupon_expiry"):
        publish_shipped(db.factory, journey, now)
    user = user_in("treatment", f"coupon-{task_queue}")
    add_user(db.factory, user, now)
    settings = Settings(
        environment="development",
        database_url=db.url,
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=task_queue,
    )
    async with running_worker(dev_env.client, settings, db.factory, task_queue=task_queue):
        signup = store_event(db.factory, user, "user_signed_up", now)
        await router_for(dev_env, db, task_queue).route([signup])
        # The worker runs no pending-event loop here: only the hand-over can route it.
        await assert_eventually_async(
            lambda: announced_routed(db, user),
            timeout=20,
            interval=0.1,
            message="the coupon_issued event routed",
        )
        journeys = {e.journey_id: e for e in enrollments(db.factory, user)}
        assert set(journeys) == {"new_user_coupon", "coupon_expiry"}
        with db.factory() as session:
            (coupon,) = session.scalars(select(Coupon).where(Coupon.user_id == user))
        # One expiry run per coupon, keyed by its code, and it is running.
        expiry = journeys["coupon_expiry"]
        assert expiry.entry_key == coupon.code
        assert expiry.workflow_id == journey_workflow_id("coupon_expiry", user, coupon.code)
        description = await dev_env.client.get_workflow_handle(expiry.workflow_id).describe()
        assert description.status is not None and description.status.name == "RUNNING"


def announced_routed(db, user: str) -> bool:
    """Whether the user's ``coupon_issued`` event is stored and routed."""
    with db.factory() as session:
        routed = session.scalars(
            select(Event.routed_at).where(Event.user_id == user, Event.event == "coupon_issued")
        ).all()
    return len(routed) == 1 and routed[0] is not None
