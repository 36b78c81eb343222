"""A sweep whose worker is SIGKILLed mid-page resumes from its cursor and enters everyone
exactly once (real dev server, the worker as its own process)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sweep_support import add_population, enrollments_per_user, entered_users, publish_winback
from test_scheduler_replicas import scheduler_env

from support import assert_eventually_async, fail_if_exited
from triggers.scheduler import SweepScheduler
from workflows.ids import sweep_workflow_id
from workflows.sweep import SweepWorkflow

USERS = 1200


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "cli", "worker"],
        env=env,
        cwd=log.parent,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def test_a_killed_worker_costs_a_retry_not_a_double_entry(
    dev_env, sqlite_db, task_queue, tmp_path
):
    db = sqlite_db
    t0 = await dev_env.get_current_time()
    tick = t0.replace(microsecond=0)
    journey = f"winback_{task_queue[3:]}"
    publish_winback(db.factory, t0 - timedelta(days=1), journey_id=journey)
    everyone = add_population(db.factory, tick, dormant=USERS, active=50)
    env = scheduler_env(db, dev_env.client.service_client.config.target_host, task_queue)
    env["LIFECYCLE_WORKER_METRICS_ADDRESS"] = ""
    worker = start_worker(env, tmp_path / "worker-1.log")
    scheduler = SweepScheduler(
        factory=db.factory,
        client=dev_env.client,
        task_queue=task_queue,
        page_size=400,
        heartbeat=timedelta(seconds=5),
    )
    try:
        assert await scheduler.start_sweep(journey, tick)

        def inside_page_two() -> bool:
            fail_if_exited(worker, (tmp_path / "worker-1.log").read_text)
            return len(entered_users(db.factory, journey)) >= 500

        await assert_eventually_async(
            inside_page_two, timeout=240, message="the sweep made no progress"
        )
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        at_kill = len(entered_users(db.factory, journey))
        worker = start_worker(env, tmp_path / "worker-2.log")
        handle = dev_env.client.get_workflow_handle_for(
            SweepWorkflow.run, sweep_workflow_id(journey, tick)
        )
        result = await asyncio.wait_for(handle.result(), timeout=180)
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=30)

    assert at_kill < USERS  # the kill landed mid-sweep
    assert (result.members, result.entered) == (USERS, USERS)
    assert entered_users(db.factory, journey) == everyone
    assert enrollments_per_user(db.factory, journey) == 1
    started = await dev_env.client.count_workflows(
        f'WorkflowType="JourneyWorkflow" AND TaskQueue="{task_queue}"'
    )
    assert started.count == USERS
