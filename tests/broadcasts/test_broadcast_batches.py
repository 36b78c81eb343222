"""A broadcast's sends go out in batches (``send_batch``): one refused or failed send does
not hold up the rest, a retried batch makes only the sends an earlier attempt did not, and
the channel's broadcast rate holds across the bulk queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from broadcast_support import (
    add_members,
    audience_file,
    closed_result,
    outbox_keys,
    sends,
    start,
    stored_broadcast,
    worker_settings,
)
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.broadcast import BroadcastActivities
from channels.base import OutboundMessage, PermanentSendError, SendResult, TransientSendError
from channels.outbox import OutboxChannel
from store.db import SessionFactory, transaction
from store.models import OutboxMessage, User
from store.outbox import SqlOutboxSink
from worker import build_delivery, running_worker
from workflows.broadcast import BroadcastWorkflow
from workflows.contracts import BroadcastPageInput, SendBatchInput, broadcast_workflow_id

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai


class Troubled:
    """The outbox, except that one recipient's number is refused for good and another's
    first attempt finds the provider unavailable."""

    name = "outbox"

    def __init__(self, channel: OutboxChannel, *, refused: str, flaky: str):
        self._channel = channel
        self._refused, self._flaky = refused, flaky
        self.attempts: dict[str, int] = {}

    def send(self, message: OutboundMessage) -> SendResult:
        user_id = message.key.split("/")[-1]
        self.attempts[user_id] = self.attempts.get(user_id, 0) + 1
        if user_id == self._refused:
            raise PermanentSendError("invalid_number", "not a mobile number")
        if user_id == self._flaky and self.attempts[user_id] == 1:
            raise TransientSendError("503 from the provider", retry_after=7)
        return self._channel.send(message)


def decided_page(factory: SessionFactory, tmp_path, tier: str, members: int) -> SendBatchInput:
    """A stored broadcast whose first page has been decided: the batch of its ready sends."""
    ids = add_members(factory, tier, members, NOW)
    broadcast_id = stored_broadcast(factory, audience_file(tmp_path, tier), NOW)
    delivery = build_delivery(worker_settings(quiet_hours=None), factory)
    what: dict[str, Any] = {
        "broadcast_id": broadcast_id,
        "key_prefix": "run-1",
        "channel": "sms",
        "template": "sale_preheat_sms",
        "topic": "marketing",
        "now": NOW,
    }
    page = ActivityEnvironment().run(
        BroadcastActivities(factory, delivery).broadcast_page,
        BroadcastPageInput(**what, limit=members),
    )
    assert page.ready == ids
    return SendBatchInput(**what, user_ids=page.ready)


def test_a_batch_goes_on_past_a_refused_and_a_failed_send_and_its_retry_sends_only_those_left(
    db, tmp_path
):
    batch = decided_page(db.factory, tmp_path, "batch", 6)
    refused, flaky = batch.user_ids[1], batch.user_ids[3]
    channel = Troubled(OutboxChannel(SqlOutboxSink(db.factory)), refused=refused, flaky=flaky)
    delivery = build_delivery(
        worker_settings(quiet_hours=None),
        db.factory,
        channels={"sms": channel, "email": channel, "push": channel},
    )
    env = ActivityEnvironment()

    with pytest.raises(ApplicationError) as failed:
        env.run(delivery.send_batch, batch)
    assert failed.value.type == "ProviderUnavailable" and not failed.value.non_retryable
    assert failed.value.next_retry_delay == timedelta(seconds=7)  # the provider's Retry-After
    ledger = sends(db.factory, batch.broadcast_id)
    assert {u: (m.status, m.reason) for u, m in ledger.items()} == {
        u: ("failed", "invalid_number")
        if u == refused
        else ("sending", None)
        if u == flaky
        else ("sent", None)
        for u in batch.user_ids
    }

    retried = env.run(delivery.send_batch, batch)  # Temporal's retry, same input
    assert (retried.sent, retried.failed, retried.skipped) == (5, 1, {})
    assert channel.attempts == {u: 2 if u == flaky else 1 for u in batch.user_ids}
    assert len(outbox_keys(db.factory)) == 5
    assert {m.status for u, m in sends(db.factory, batch.broadcast_id).items() if u != refused} == {
        "sent"
    }

    again = env.run(delivery.send_batch, batch)  # a third run sends nothing more
    assert again == retried
    assert sum(channel.attempts.values()) == 7


def test_a_batch_skips_a_member_erased_since_the_policy_passed(db, tmp_path):
    batch = decided_page(db.factory, tmp_path, "gone", 3)
    with transaction(db.factory) as session:
        user = session.get(User, batch.user_ids[0])
        assert user is not None
        user.phone = None  # lost their number after the page was decided
    delivery = build_delivery(worker_settings(quiet_hours=None), db.factory)
    result = ActivityEnvironment().run(delivery.send_batch, batch)
    assert (result.sent, result.failed, result.skipped) == (2, 0, {"unreachable": 1})
    assert sends(db.factory, batch.broadcast_id)[batch.user_ids[0]].reason == "unreachable"


async def test_the_channels_broadcast_rate_holds_across_batches(
    dev_env, sqlite_db, task_queue, tmp_path
):
    """300 recipients at 50 SMS/s: batches of 5 (a tenth of a second's worth, each spacing
    its sends), at most 10 batches a second from the bulk queue: about six seconds.
    Temporal's limiter lets a full bucket (about two seconds' worth) through at once, at the
    start or after a stall, so one second may see two to three times the rate; over the
    run, the rate holds."""
    db = sqlite_db
    rate, members = 50, 300
    settings = worker_settings(database_url=db.url, quiet_hours=None)
    settings = settings.model_copy(update={"sms_broadcast_rate_per_second": rate})
    async with running_worker(dev_env.client, settings, db.factory, task_queue=task_queue):
        now = await dev_env.get_current_time()
        add_members(db.factory, "paced", members, now)
        broadcast_id = await start(
            dev_env.client,
            db.factory,
            task_queue,
            audience_file(tmp_path, "paced"),
            now,
            channel_rate=rate,
        )
        handle = dev_env.client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )
        result = await closed_result(handle, timeout=120)
    assert result.sent == members
    with db.factory() as session:
        times = sorted(session.scalars(select(OutboxMessage.created_at)))
    assert len(times) == members
    span = (times[-1] - times[0]).total_seconds()
    busiest = max(sum(1 for t in times if s <= t < s + timedelta(seconds=1)) for s in times)
    print(f"\n{members} sends over {span:.2f} s; at most {busiest} in one second")
    assert span >= (members - 2 * rate) / rate  # no more than the rate, after the first bucket
    assert busiest <= 3 * rate  # a full bucket, and that second's own share


class Breaking(Troubled):
    """The outbox, except that one recipient's send fails in a way no retry can fix."""

    def __init__(self, channel: OutboxChannel, *, broken: str):
        super().__init__(channel, refused="", flaky="")
        self._broken = broken

    def send(self, message: OutboundMessage) -> SendResult:
        if message.key.split("/")[-1] == self._broken:
            raise ValueError("the SDK cannot encode this recipient")
        return super().send(message)


def test_a_send_that_fails_unexpectedly_fails_alone_and_is_not_retried(db, tmp_path):
    batch = decided_page(db.factory, tmp_path, "odd", 4)
    broken = batch.user_ids[1]
    channel = Breaking(OutboxChannel(SqlOutboxSink(db.factory)), broken=broken)
    delivery = build_delivery(
        worker_settings(quiet_hours=None),
        db.factory,
        channels={"sms": channel, "email": channel, "push": channel},
    )
    env = ActivityEnvironment()

    result = env.run(delivery.send_batch, batch)

    assert (result.sent, result.failed) == (3, 1)
    ledger = sends(db.factory, batch.broadcast_id)
    assert (ledger[broken].status, ledger[broken].reason) == ("failed", "send_error")
    assert env.run(delivery.send_batch, batch) == result  # a retry tries nothing again
    assert len(outbox_keys(db.factory)) == 3


def test_a_recipient_the_policy_cannot_judge_does_not_hold_the_page(db, tmp_path):
    ids = add_members(db.factory, "judge", 3, NOW)
    broadcast_id = stored_broadcast(db.factory, audience_file(tmp_path, "judge"), NOW)
    delivery = build_delivery(worker_settings(quiet_hours=None), db.factory)
    decide = delivery.decide

    def one_fails(session, request, row, **kwargs):  # type: ignore[no-untyped-def]
        if request.user_id == ids[1]:
            raise KeyError("a profile field the policy cannot read")
        return decide(session, request, row, **kwargs)

    delivery.decide = one_fails  # type: ignore[method-assign]
    page = ActivityEnvironment().run(
        BroadcastActivities(db.factory, delivery).broadcast_page,
        BroadcastPageInput(
            broadcast_id=broadcast_id,
            key_prefix="run-1",
            channel="sms",
            template="sale_preheat_sms",
            topic="marketing",
            now=NOW,
            limit=10,
        ),
    )

    assert page.ready == [ids[0], ids[2]]
    assert page.skipped == {"policy_error": 1}
    ledger = sends(db.factory, broadcast_id)
    assert (ledger[ids[1]].status, ledger[ids[1]].reason) == ("failed", "policy_error")
