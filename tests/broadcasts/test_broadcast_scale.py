"""A large broadcast: every one of 20,000 members gets one SMS, and no run of the workflow
(continued as new page after page) has a history longer than 10,000 events.

On the dev server and SQLite: about 3.5 minutes on a busy 2-core machine (209 s; 21 runs,
each page of 1,000 sent in 50 batches, the largest history 314 events)."""

from __future__ import annotations

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


# Its own wait for the broadcast to close allows 30 minutes; the suite's timeout is shorter.
@pytest.mark.timeout(2400)
async def test_no_history_grows_past_ten_thousand_events(dev_env, sqlite_db, task_queue, tmp_path):
    db = sqlite_db
    recipients = 20_000
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
