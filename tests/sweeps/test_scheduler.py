"""The sweep scheduler: one sweep per tick, misfires within the grace caught up, older ones
skipped, nothing for ticks before the journey was published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sweep_support import publish_winback
from temporalio.client import WorkflowExecutionStatus

from store.db import transaction
from store.journeys import set_status
from store.models import SweepTick
from triggers.scheduler import SweepScheduler
from workflows.ids import sweep_workflow_id

DAILY_TICK = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 Shanghai


def scheduler_at(env, db, task_queue: str, now: datetime, **kwargs) -> SweepScheduler:
    return SweepScheduler(
        factory=db.factory,
        client=env.client,
        task_queue=task_queue,
        clock=lambda: now,
        **kwargs,
    )


def ticks(db) -> list[SweepTick]:
    with transaction(db.factory) as session:
        return session.query(SweepTick).order_by(SweepTick.tick).all()


async def test_a_late_scheduler_catches_up_the_tick_and_replicas_start_it_once(
    dev_env, db, task_queue
):
    journey = f"winback_{task_queue[3:]}"  # sweep ids are per journey and tick
    publish_winback(db.factory, DAILY_TICK - timedelta(days=3), journey_id=journey)
    now = DAILY_TICK + timedelta(minutes=40)  # every scheduler was down at 10:00
    first = scheduler_at(dev_env, db, task_queue, now)
    second = scheduler_at(dev_env, db, task_queue, now + timedelta(seconds=3))
    await first.refresh()
    await second.refresh()
    assert await first.start_sweep(journey, DAILY_TICK) is False
    first.shutdown()
    second.shutdown()

    rows = ticks(db)
    assert [(r.journey_id, r.tick) for r in rows] == [(journey, DAILY_TICK)]
    assert rows[0].started_at is not None
    wid = sweep_workflow_id(journey, DAILY_TICK)
    assert wid == f"sweep:{journey}:2026-11-25T02:00:00Z"
    described = await dev_env.client.get_workflow_handle(wid).describe()
    assert described.workflow_type == "SweepWorkflow"
    assert described.status == WorkflowExecutionStatus.RUNNING  # no worker on this queue
    await dev_env.client.get_workflow_handle(wid).terminate()


async def test_a_tick_missed_by_more_than_the_grace_is_skipped(dev_env, db, task_queue):
    publish_winback(db.factory, DAILY_TICK - timedelta(days=3))
    late = scheduler_at(
        dev_env, db, task_queue, DAILY_TICK + timedelta(hours=7), misfire_grace=timedelta(hours=6)
    )
    await late.refresh()
    late.shutdown()
    assert ticks(db) == []


async def test_publishing_after_todays_tick_waits_for_tomorrows(dev_env, db, task_queue):
    publish_winback(db.factory, DAILY_TICK + timedelta(hours=5))  # published at 15:00
    scheduler = scheduler_at(dev_env, db, task_queue, DAILY_TICK + timedelta(hours=6))
    await scheduler.refresh()
    assert scheduler.journeys == {"winback_probe": "0 10 * * * (Asia/Shanghai)"}
    scheduler.shutdown()
    assert ticks(db) == []


async def test_paused_journeys_lose_their_cron_job_and_regain_it(dev_env, db, task_queue):
    publish_winback(db.factory, DAILY_TICK + timedelta(hours=5))
    scheduler = scheduler_at(dev_env, db, task_queue, DAILY_TICK + timedelta(hours=6))
    await scheduler.refresh()
    assert list(scheduler.journeys) == ["winback_probe"]
    with transaction(db.factory) as session:
        set_status(session, journey_id="winback_probe", status="paused")
    await scheduler.refresh()
    assert scheduler.journeys == {}
    with transaction(db.factory) as session:
        set_status(session, journey_id="winback_probe", status="published")
    await scheduler.refresh()
    assert list(scheduler.journeys) == ["winback_probe"]
    scheduler.shutdown()
