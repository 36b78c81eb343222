"""A large broadcast: every member gets one SMS, and no run of the workflow (continued as
new page after page) has a history longer than 10,000 events.

The 20,000-recipient run takes minutes (453 s on the dev server and SQLite, on a busy 2-core
machine; 21 runs, the largest history 4,193 events); it runs when ``LIFECYCLE_BIG_TESTS=1``.
The 3,000-recipient run (four runs of the workflow, three of them with a full page of 1,000
sends) checks the same bound in every run of the suite."""

from __future__ import annotations

import os
import time

import pytest
from broadcast_support import (
    add_members,
    audience_file,
    closed_result,
    history_lengths,
    sends,
    start,
    worker_settings,
)
from sqlalchemy import func, select

from store.models import OutboxMessage
from worker import running_worker
from workflows.broadcast import BroadcastWorkflow
from workflows.contracts import broadcast_workflow_id

BIG = pytest.mark.skipif(
    os.environ.get("LIFECYCLE_BIG_TESTS") != "1", reason="set LIFECYCLE_BIG_TESTS=1 (minutes)"
)


@pytest.mark.parametrize("recipients", [3_000, pytest.param(20_000, marks=BIG)])
async def test_no_history_grows_past_ten_thousand_events(
    dev_env, sqlite_db, task_queue, tmp_path, recipients
):
    db = sqlite_db
    # Caps and quiet hours as in production, the SMS rate limit out of the way.
    settings = worker_settings(database_url=db.url, quiet_hours=None)
    async with running_worker(dev_env.client, settings, db.factory, task_queue=task_queue):
        now = await dev_env.get_current_time()
        add_members(db.factory, "big", recipients, now)
        started = time.monotonic()
        broadcast_id = await start(
            dev_env.client, db.factory, task_queue, audience_file(tmp_path, "big"), now
        )
        handle = dev_env.client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )
        result = await closed_result(handle, timeout=1800)
        elapsed = time.monotonic() - started

    ledger = sends(db.factory, broadcast_id)
    with db.factory() as session:
        outboxed = session.scalar(select(func.count()).select_from(OutboxMessage))
    assert (result.status, result.paged, result.sent) == ("completed", recipients, recipients)
    assert outboxed == len(ledger) == recipients
    first_run_id = next(iter(ledger.values())).idempotency_key.split("/")[0]
    lengths = await history_lengths(dev_env.client, broadcast_id, first_run_id)
    print(f"\n{recipients} sends in {elapsed:.1f}s; {len(lengths)} runs; histories {lengths}")
    assert len(lengths) == recipients // 1000 + 1  # a page per run, then the empty last page
    assert max(lengths) <= 10_000
