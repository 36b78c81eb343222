"""SweepWorkflow on the real dev server: pages, continue-as-new, idempotent entry."""

from __future__ import annotations

from datetime import timedelta

from sweep_support import (
    add_population,
    enrollments_per_user,
    entered_users,
    publish_winback,
    sweep_worker,
)
from temporalio.client import WorkflowExecutionStatus

from store.db import transaction
from store.journeys import set_status
from store.models import Enrollment, SweepTick
from triggers.scheduler import SweepScheduler
from workflows.ids import sweep_workflow_id
from workflows.sweep import SweepInput, SweepWorkflow


def scheduler_for(env, db, task_queue: str, page_size: int = 1000) -> SweepScheduler:
    return SweepScheduler(
        factory=db.factory, client=env.client, task_queue=task_queue, page_size=page_size
    )


async def test_a_sweep_enters_every_member_once_across_pages_and_runs(dev_env, db, task_queue):
    env = dev_env
    t0 = await env.get_current_time()
    tick = t0.replace(microsecond=0)
    publish_winback(db.factory, t0 - timedelta(days=1))
    dormant = add_population(db.factory, tick, dormant=1300, active=150)
    wid = sweep_workflow_id("winback_probe", tick)
    async with sweep_worker(env, db, task_queue):
        handle = await env.client.start_workflow(
            SweepWorkflow.run,
            SweepInput("winback_probe", tick, page_size=500, pages_per_run=2),
            id=wid,
            task_queue=task_queue,
        )
        result = await handle.result()
        first_run = env.client.get_workflow_handle_for(
            SweepWorkflow.run, wid, run_id=handle.first_execution_run_id
        )
        assert (await first_run.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW

        # The same tick again (another replica, a restarted scheduler): nothing starts.
        assert not await scheduler_for(env, db, task_queue).start_sweep("winback_probe", tick)

        # The next day's sweep finds the same people, but none may re-enter within 30 days.
        later = tick + timedelta(days=1)
        again = await env.client.execute_workflow(
            SweepWorkflow.run,
            SweepInput("winback_probe", later, page_size=1000),
            id=sweep_workflow_id("winback_probe", later),
            task_queue=task_queue,
        )

    assert (result.members, result.entered, result.stopped) == (1300, 1300, "")
    assert entered_users(db.factory) == dormant
    assert enrollments_per_user(db.factory) == 1
    with transaction(db.factory) as session:
        rows = session.query(Enrollment).filter_by(journey_id="winback_probe").all()
        assert {r.trigger_message_id for r in rows} == {wid}
        assert {r.entered_at for r in rows} == {tick}
    assert (again.members, again.entered) == (1300, 0)


async def test_the_sweep_records_its_progress_in_its_tick_row(dev_env, db, task_queue):
    env = dev_env
    t0 = await env.get_current_time()
    tick = t0.replace(microsecond=0)
    publish_winback(db.factory, t0 - timedelta(days=1))
    dormant = add_population(db.factory, tick, dormant=1200, active=10)
    scheduler = scheduler_for(env, db, task_queue, page_size=500)
    async with sweep_worker(env, db, task_queue):
        assert await scheduler.start_sweep("winback_probe", tick)
        wid = sweep_workflow_id("winback_probe", tick)
        await env.client.get_workflow_handle_for(SweepWorkflow.run, wid).result()
    with transaction(db.factory) as session:
        row = session.query(SweepTick).filter_by(workflow_id=wid).one()
    assert row.tick == tick and row.started_at is not None and row.finished_at is not None
    assert (row.members, row.entered, row.cursor) == (1200, 1200, dormant[-1])


async def test_a_paused_journey_is_not_swept(dev_env, db, task_queue):
    env = dev_env
    t0 = await env.get_current_time()
    tick = t0.replace(microsecond=0)
    publish_winback(db.factory, t0 - timedelta(days=1))
    add_population(db.factory, tick, dormant=20, active=0)
    with transaction(db.factory) as session:
        set_status(session, journey_id="winback_probe", status="paused")
    async with sweep_worker(env, db, task_queue):
        result = await env.client.execute_workflow(
            SweepWorkflow.run,
            SweepInput("winback_probe", tick),
            id=sweep_workflow_id("winback_probe", tick),
            task_queue=task_queue,
        )
    assert (result.entered, result.stopped) == (0, "journey_not_published")
    assert entered_users(db.factory) == []
