"""Worker tuning from the environment: activity threads, workflow tasks, the sticky cache and
pollers (``LIFECYCLE_WORKER_*``), refused with the variable's name when out of range, and a
worker tuned to the minimum still runs a journey to its end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from config import Settings
from journey_support import add_user, ledger, publish_shipped, router_for, store_event, user_in
from worker import activity_pool, running_worker, workflow_tuning
from workflows.ids import journey_workflow_id


def test_the_environment_tunes_the_worker(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_WORKER_ACTIVITY_THREADS", "4")
    monkeypatch.setenv("LIFECYCLE_WORKER_WORKFLOW_TASKS", "20")
    monkeypatch.setenv("LIFECYCLE_WORKER_CACHED_WORKFLOWS", "0")
    monkeypatch.setenv("LIFECYCLE_WORKER_WORKFLOW_POLLERS", "3")
    settings = Settings(environment="development")
    with activity_pool(settings) as pool:
        assert pool._max_workers == 4
    assert workflow_tuning(settings) == {
        "max_concurrent_workflow_tasks": 20,
        "max_cached_workflows": 0,
        "max_concurrent_workflow_task_polls": 3,
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WORKER_ACTIVITY_THREADS", "0"),
        ("WORKER_WORKFLOW_POLLERS", "1"),  # one poll could never reach the sticky queue
        ("WORKER_CACHED_WORKFLOWS", "-1"),
        ("WORKER_ACTIVITY_POLLERS", "lots"),
    ],
)
def test_a_tuning_out_of_range_is_refused_by_name(monkeypatch, variable, value):
    monkeypatch.setenv(f"LIFECYCLE_{variable}", value)
    with pytest.raises(ValidationError, match=variable.lower()):
        Settings(environment="development")


async def test_a_worker_without_a_sticky_cache_runs_a_journey_to_its_end(
    time_env, sqlite_db, task_queue
):
    # No cache: every workflow task replays the run's history from the start.
    settings = Settings(
        environment="development",
        quiet_hours="off",
        worker_activity_threads=2,
        worker_workflow_tasks=2,
        worker_cached_workflows=0,
        worker_workflow_pollers=2,
        worker_activity_pollers=1,
    )
    db, user = sqlite_db, user_in("treatment", f"tuned-{task_queue}")
    router = router_for(time_env, db, task_queue)
    async with running_worker(
        time_env.client, settings, db.factory, task_queue=task_queue
    ) as workers:
        journeys, *channels = (worker.config() for worker in workers)
        assert (
            journeys["max_cached_workflows"],
            journeys["max_concurrent_workflow_tasks"],
            journeys["max_concurrent_workflow_task_polls"],
            journeys["max_concurrent_activities"],
        ) == (0, 2, 2, 2)
        assert {c["max_concurrent_activity_task_polls"] for c in [journeys, *channels]} == {1}
        t0 = await time_env.get_current_time()
        publish_shipped(db.factory, "new_user_coupon", t0 - timedelta(minutes=1))
        add_user(db.factory, user, t0)
        await router.route([store_event(db.factory, user, "user_signed_up", t0)])
        handle = time_env.client.get_workflow_handle(journey_workflow_id("new_user_coupon", user))
        await time_env.sleep(timedelta(days=8))  # the journey's seven days, its worker up
        await handle.result()
    assert [(m.step_id, m.status) for m in ledger(db.factory, user)][:1] == [
        ("welcome_sms", "sent")
    ]
