"""Three ``lifecycle scheduler`` processes on a per-second cron: one sweep per tick."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sweep_support import publish_winback, sweep_worker
from temporalio.client import WorkflowExecutionStatus

from store.db import transaction
from store.models import SweepTick
from support import assert_eventually_async, fail_if_exited

ROOT = Path(__file__).resolve().parents[2]
RUN_FOR = 10.0  # seconds


def scheduler_env(db, address: str, task_queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        DATABASE_URL=db.url,
        TEMPORAL_ADDRESS=address,
        LIFECYCLE_TASK_QUEUE=task_queue,
        LIFECYCLE_ENVIRONMENT="development",
        LIFECYCLE_SCHEDULER_REFRESH_SECONDS="1",
    )
    return env


async def test_three_replicas_start_exactly_one_sweep_per_tick(dev_env, db, task_queue, tmp_path):
    t0 = await dev_env.get_current_time()
    journey = f"winback_{task_queue[3:]}"
    publish_winback(db.factory, t0 - timedelta(days=1), cron="* * * * * *", journey_id=journey)
    address = dev_env.client.service_client.config.target_host
    env = scheduler_env(db, address, task_queue)
    logs = [tmp_path / f"scheduler-{i}.log" for i in range(3)]
    async with sweep_worker(dev_env, db, task_queue):
        procs = [
            subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "cli", "scheduler"],
                env=env,
                cwd=tmp_path,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        try:

            def all_ready() -> bool:
                texts = [log.read_text() for log in logs]
                for p in procs:
                    fail_if_exited(p, lambda: "\n".join(texts))
                assert all("scheduler ready" in text for text in texts), texts
                return True

            await assert_eventually_async(all_ready, timeout=60, interval=0.2)
            started = time.monotonic()
            await asyncio.sleep(RUN_FOR)
            stopping = datetime.now(UTC)
        finally:
            for p in procs:
                p.send_signal(signal.SIGINT)
            for p in procs:
                p.wait(timeout=30)
        elapsed = time.monotonic() - started

        async def started_sweeps_closed() -> bool:
            with transaction(db.factory) as session:
                ticks = session.query(SweepTick).filter_by(journey_id=journey).all()
                started_ids = [t.workflow_id for t in ticks if t.started_at]
            for wid in started_ids:
                described = await dev_env.client.get_workflow_handle(wid).describe()
                assert described.status != WorkflowExecutionStatus.RUNNING, wid
            return True

        # The last sweeps (of an empty audience) finish before their worker stops.
        await assert_eventually_async(started_sweeps_closed, timeout=30, interval=0.2)

    with transaction(db.factory) as session:
        rows = session.query(SweepTick).filter_by(journey_id=journey).order_by(SweepTick.tick).all()
    ticks = [r.tick for r in rows]
    texts = [log.read_text() for log in logs]
    # Every tick on the cron's grid, each once, and (almost) every second covered.
    assert all(t.microsecond == 0 for t in ticks), ticks
    assert len(set(ticks)) == len(ticks)
    assert 0.8 * elapsed <= len(ticks) <= elapsed + 4, (elapsed, ticks)
    # A tick claimed in the moment the replicas were stopped may not have been started (the
    # next scheduler to look starts it, within the grace); every other one was.
    unstarted = [r.tick for r in rows if r.started_at is None]
    assert all(t >= stopping - timedelta(seconds=3) for t in unstarted), (stopping, unstarted)
    # Exactly one workflow per tick, whichever replica got there first ...
    ids = [
        w.id
        async for w in dev_env.client.list_workflows(
            f'WorkflowType="SweepWorkflow" AND TaskQueue="{task_queue}"'
        )
    ]
    assert len(ids) == len(set(ids))
    assert (
        {r.workflow_id for r in rows if r.started_at} <= set(ids) <= {r.workflow_id for r in rows}
    )
    # ... and no two replicas both believe they started one.
    claims = sum(text.count("sweep started:") for text in texts)
    assert len(ids) - len(logs) <= claims <= len(ids), texts
