"""Steering a running broadcast (pause, resume, cancel) and sending exactly once when its
activities are retried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from broadcast_support import (
    add_members,
    audience_file,
    broadcast_row,
    closed_result,
    outbox_keys,
    sends,
    start,
    stored_broadcast,
    worker_settings,
)
from temporalio.testing import ActivityEnvironment

from activities.broadcast import BroadcastActivities
from channels.base import OutboundMessage, SendResult, TransientSendError
from channels.outbox import OutboxChannel
from store.control import set_sends_paused
from store.db import transaction
from store.outbox import SqlOutboxSink
from support import assert_eventually_async
from worker import build_delivery, running_worker
from workflows.broadcast import BroadcastWorkflow
from workflows.contracts import BroadcastPageInput, broadcast_workflow_id


async def test_paused_before_send_at_sends_nothing_until_resumed(
    time_env, sqlite_db, task_queue, tmp_path
):
    db = sqlite_db
    async with running_worker(
        time_env.client, worker_settings(), db.factory, task_queue=task_queue
    ):
        now = await time_env.get_current_time()
        members = add_members(db.factory, "p", 4, now)
        at = (now + timedelta(hours=1)).isoformat()
        broadcast_id = await start(
            time_env.client, db.factory, task_queue, audience_file(tmp_path, "p"), now, at=at
        )
        handle = time_env.client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )
        assert (await handle.query(BroadcastWorkflow.progress)).status == "scheduled"
        await handle.signal(BroadcastWorkflow.pause)
        await time_env.sleep(timedelta(hours=2))  # past send_at, still paused

        async def row_paused() -> bool:
            return broadcast_row(db.factory, broadcast_id).status == "paused"

        await assert_eventually_async(
            row_paused, timeout=20, message="the broadcast to record its pause"
        )
        assert (await handle.query(BroadcastWorkflow.progress)).status == "paused"
        assert sends(db.factory, broadcast_id) == {}
        assert outbox_keys(db.factory) == []

        await handle.signal(BroadcastWorkflow.resume)
        result = await handle.result()
    assert (result.status, result.sent) == ("completed", 4)
    assert sorted(sends(db.factory, broadcast_id)) == members
    assert all(
        m.sent_at >= now + timedelta(hours=1) for m in sends(db.factory, broadcast_id).values()
    )


async def test_cancel_stops_sending_and_keeps_what_was_sent(
    time_env, sqlite_db, task_queue, tmp_path
):
    db = sqlite_db
    async with running_worker(
        time_env.client, worker_settings(), db.factory, task_queue=task_queue
    ):
        now = await time_env.get_current_time()
        add_members(db.factory, "c", 20, now)
        broadcast_id = await start(
            time_env.client, db.factory, task_queue, audience_file(tmp_path, "c"), now, rate="2/s"
        )
        handle = time_env.client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )

        async def two_sent() -> bool:
            return (await handle.query(BroadcastWorkflow.progress)).sent >= 2

        await assert_eventually_async(two_sent, timeout=20, message="two sends")
        await handle.signal(BroadcastWorkflow.cancel)
        result = await handle.result()

    assert result.status == "cancelled"
    assert 2 <= result.sent < 20
    ledger = sends(db.factory, broadcast_id)
    sent = [m for m in ledger.values() if m.status == "sent"]
    assert len(sent) == result.sent == len(outbox_keys(db.factory))
    assert {(m.status, m.reason) for m in ledger.values() if m.status != "sent"} == {
        ("skipped", "cancelled")
    }
    row = broadcast_row(db.factory, broadcast_id)
    assert row.status == "cancelled" and row.finished_at is not None


class AcceptedThenTimedOut:
    """The outbox, except that the first attempt of every message times out after the
    provider accepted it: the worst case for sending twice."""

    name = "outbox"

    def __init__(self, channel: OutboxChannel):
        self._channel = channel
        self.attempts: dict[str, int] = {}

    def send(self, message: OutboundMessage) -> SendResult:
        result = self._channel.send(message)
        self.attempts[message.key] = self.attempts.get(message.key, 0) + 1
        if self.attempts[message.key] == 1:
            raise TransientSendError("timed out waiting for the provider's answer")
        return result


async def test_a_retried_send_reaches_each_member_once(time_env, sqlite_db, task_queue, tmp_path):
    db = sqlite_db
    outbox = OutboxChannel(SqlOutboxSink(db.factory))
    flaky = AcceptedThenTimedOut(outbox)
    channels = {"sms": flaky, "email": outbox, "push": outbox}
    settings = worker_settings()
    async with running_worker(
        time_env.client, settings, db.factory, task_queue=task_queue, channels=channels
    ):
        now = await time_env.get_current_time()
        members = add_members(db.factory, "r", 5, now)
        broadcast_id = await start(
            time_env.client, db.factory, task_queue, audience_file(tmp_path, "r"), now
        )
        handle = time_env.client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )
        result = await handle.result()

    ledger = sends(db.factory, broadcast_id)
    assert sorted(flaky.attempts.values()) == [2] * 5  # every send was tried twice
    assert sorted(outbox_keys(db.factory)) == sorted(m.idempotency_key for m in ledger.values())
    assert {m.status for m in ledger.values()} == {"sent"}
    assert (result.sent, sorted(ledger)) == (5, members)


async def test_a_retried_page_decides_each_member_once(db, tmp_path):
    """The page activity run twice with the same input (a retry after a lost answer):
    the same recipients are ready, no second ledger row is written."""
    now = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai
    members = add_members(db.factory, "twice", 30, now)
    broadcast_id = stored_broadcast(db.factory, audience_file(tmp_path, "twice"), now)
    settings = worker_settings(quiet_hours=None)
    delivery = build_delivery(settings, db.factory)
    activities = BroadcastActivities(db.factory, delivery)
    page = BroadcastPageInput(
        broadcast_id=broadcast_id,
        key_prefix="run-1",
        channel="sms",
        template="sale_preheat_sms",
        topic="marketing",
        now=now,
        cursor=None,
        limit=20,
    )
    env = ActivityEnvironment()
    first = await asyncio.to_thread(env.run, activities.broadcast_page, page)
    again = await asyncio.to_thread(env.run, activities.broadcast_page, page)
    assert first == again
    assert first.ready == members[:20]
    assert (first.next_cursor, first.last_page) == (members[19], False)
    assert len(sends(db.factory, broadcast_id)) == 20
    rest = await asyncio.to_thread(
        env.run,
        activities.broadcast_page,
        BroadcastPageInput(**(vars(page) | {"cursor": members[19]})),
    )
    assert rest.ready == members[20:] and rest.last_page
    assert len(sends(db.factory, broadcast_id)) == 30


async def test_pause_all_holds_a_broadcast_until_resume_all(
    time_env, sqlite_db, task_queue, tmp_path
):
    db = sqlite_db
    async with running_worker(
        time_env.client, worker_settings(), db.factory, task_queue=task_queue
    ):
        now = await time_env.get_current_time()
        add_members(db.factory, "held", 3, now)
        with transaction(db.factory) as session:
            set_sends_paused(session, paused=True, now=now)
        broadcast_id = await start(
            time_env.client, db.factory, task_queue, audience_file(tmp_path, "held"), now
        )
        handle = time_env.client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )

        async def running() -> bool:
            return broadcast_row(db.factory, broadcast_id).status == "running"

        await assert_eventually_async(running, timeout=20, message="the broadcast to start")
        await asyncio.sleep(1)
        assert sends(db.factory, broadcast_id) == {}  # held: nobody decided, nothing sent
        assert (await handle.query(BroadcastWorkflow.progress)).paged == 0

        with transaction(db.factory) as session:
            set_sends_paused(session, paused=False, now=now)
        await time_env.sleep(timedelta(hours=1))  # the broadcast asks again within the hour
        result = await closed_result(handle)
    assert (result.status, result.sent) == ("completed", 3)
    assert len(outbox_keys(db.factory)) == 3
