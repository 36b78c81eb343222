"""BroadcastWorkflow on the time-skipping server: one send per member through the delivery
policy, quiet hours held until morning, ``--at``, pause / resume / cancel."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from broadcast_support import (
    add_members,
    audience_file,
    broadcast_row,
    outbox_keys,
    sends,
    start,
    worker_settings,
)
from sqlalchemy import select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.profiles import next_local_time
from config import package_binary
from store.db import make_engine, make_session_factory, transaction
from store.migrate import upgrade
from store.models import Consent, Message, OutboxMessage
from support import assert_eventually_async
from worker import running_worker
from workflows.broadcast import BroadcastWorkflow
from workflows.contracts import broadcast_workflow_id


async def test_each_member_gets_one_sms_and_the_rest_are_skipped_with_reasons(
    time_env, sqlite_db, task_queue, tmp_path
):
    db = sqlite_db
    now = await time_env.get_current_time()
    ok = add_members(db.factory, "gold", 5, now)
    (no_phone,) = add_members(db.factory, "gold", 1, now, id="gold-nophone", phone=None)
    with transaction(db.factory) as session:
        session.add(
            Consent(
                user_id=ok[0],
                channel="sms",
                topic="marketing",
                status="unsubscribed",
                source="test",
                updated_at=now,
            )
        )
        # ok[1] had its one marketing SMS of the day already (cap_sms_per_day=1).
        session.add(
            Message(
                idempotency_key="earlier",
                user_id=ok[1],
                channel="sms",
                template="x",
                topic="marketing",
                status="sent",
                created_at=now,
                sent_at=now - timedelta(hours=1),
            )
        )
    add_members(db.factory, "silver", 3, now)  # not in the audience
    async with running_worker(
        time_env.client, worker_settings(), db.factory, task_queue=task_queue
    ):
        broadcast_id = await start(
            time_env.client, db.factory, task_queue, audience_file(tmp_path, "gold"), now
        )
        handle = time_env.client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )
        result = await handle.result()

    ledger = sends(db.factory, broadcast_id)
    assert {u: (m.status, m.reason) for u, m in ledger.items()} == {
        ok[0]: ("skipped", "unsubscribed"),
        ok[1]: ("skipped", "frequency_cap"),
        ok[2]: ("sent", None),
        ok[3]: ("sent", None),
        ok[4]: ("sent", None),
        no_phone: ("skipped", "unreachable"),
    }
    keys = {ledger[u].idempotency_key for u in ok[2:]}
    assert sorted(outbox_keys(db.factory)) == sorted(keys)  # once each, nobody else
    with db.factory() as session:
        bodies = list(session.scalars(select(OutboxMessage.body)))
    assert all("年中大促" in body for body in bodies)
    assert result.status == "completed"
    assert (result.paged, result.sent) == (6, 3)
    assert result.skipped == {"unsubscribed": 1, "frequency_cap": 1, "unreachable": 1}
    row = broadcast_row(db.factory, broadcast_id)
    assert (row.status, row.recipients, row.cursor) == ("completed", 6, "gold-nophone")
    assert row.finished_at is not None


async def _quiet_hours_scenario(time_env, db, task_queue, tmp_path):
    settings = worker_settings(quiet_hours="21:00-08:00")
    async with running_worker(time_env.client, settings, db.factory, task_queue=task_queue):
        start_time = await time_env.get_current_time()
        await time_env.sleep(next_local_time(start_time, "22:30", "Asia/Shanghai") - start_time)
        now = await time_env.get_current_time()
        (shanghai,) = add_members(db.factory, "night", 1, now)
        (london,) = add_members(
            db.factory, "night", 1, now, id="night-london", timezone="Europe/London"
        )
        broadcast_id = await start(
            time_env.client, db.factory, task_queue, audience_file(tmp_path, "night"), now
        )
        handle = time_env.client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )
        morning = next_local_time(now, "08:00", "Asia/Shanghai")

        # Real time: the London send goes out, Shanghai's is held.
        async def first_sent() -> Any:
            progress = await handle.query(BroadcastWorkflow.progress)
            assert progress.sent, progress
            return progress

        # A busy worker may let the query fail: ask again shortly.
        progress = await assert_eventually_async(first_sent, timeout=60, retry_on=(RPCError,))
        assert (progress.sent, progress.deferred) == (1, 1)
        held = sends(db.factory, broadcast_id)[shanghai]
        assert (held.status, held.deferred_until) == ("pending", morning)
        await time_env.sleep(timedelta(hours=12))
        result = await handle.result()

    ledger = sends(db.factory, broadcast_id)
    assert ledger[london].sent_at < morning - timedelta(hours=9)
    assert ledger[shanghai].status == "sent"
    assert morning <= ledger[shanghai].sent_at < morning + timedelta(seconds=5)
    assert (result.sent, result.deferred, result.status) == (2, 0, "completed")
    assert len(outbox_keys(db.factory)) == 2


async def test_quiet_hours_hold_sends_until_morning_in_each_timezone(task_queue, tmp_path):
    # The time-skipping test server now and then stops its clock for good during the 12 h
    # skip (a fault of the test server, not of the workflow: simulate/runner.py's notes).
    # Such a stall fails the skip with an RPC error; the scenario then runs once more on a
    # fresh server and database. Any other failure, or a second stall, fails the test.
    for attempt in (1, 2):
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=pydantic_data_converter,
            test_server_existing_path=str(package_binary("temporal-test-server")),
        )
        url = f"sqlite:///{tmp_path / f'attempt-{attempt}.db'}"
        engine = make_engine(url)
        upgrade(engine)
        db = SimpleNamespace(url=url, factory=make_session_factory(engine))
        (tmp_path / str(attempt)).mkdir()
        try:
            await _quiet_hours_scenario(env, db, f"{task_queue}-{attempt}", tmp_path / str(attempt))
            return
        except RPCError as exc:
            if attempt == 2 or exc.status != RPCStatusCode.CANCELLED:  # how a stall surfaces
                raise
        finally:
            await env.shutdown()
            engine.dispose()
