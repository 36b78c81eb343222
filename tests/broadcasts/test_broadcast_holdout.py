"""A broadcast's holdout: ``--holdout 5`` holds out about 5% of the audience, the same
members every time (a salted hash of the broadcast and the user), each with a ledger row
skipped ``held_out`` and no message; run for real on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from broadcast_support import (
    TEMPLATE,
    add_members,
    audience_file,
    closed_result,
    fresh_ids,
    outbox_keys,
    sends,
    sms_plan,
    worker_settings,
)
from conftest import Database
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.broadcast import BroadcastActivities
from cli import main
from enrollment.entries import holdout_group
from store.db import SessionFactory
from triggers.broadcasts import (
    BroadcastError,
    start_broadcast,
    store_plan,
)
from worker import build_delivery, running_worker
from workflows.broadcast import BroadcastWorkflow
from workflows.contracts import BroadcastPageInput, broadcast_workflow_id

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai


def held_out(broadcast_id: int, user_ids: list[str], percent: float) -> list[str]:
    salt = broadcast_workflow_id(broadcast_id)
    return [u for u in user_ids if holdout_group(salt, u, percent) == "holdout"]


def test_the_holdout_is_close_to_its_share_and_the_same_every_time():
    members = [f"gold-{i:06d}" for i in range(2000)]
    chosen = held_out(7, members, 5)
    assert len(chosen) == 99  # 4.95% of 2,000: exactly, every run
    assert chosen[:3] == ["gold-000008", "gold-000065", "gold-000066"]
    assert held_out(7, members, 5) == chosen
    # Another broadcast holds out other members (about as many).
    other = held_out(8, members, 5)
    assert len(other) == 96
    assert len(set(other) & set(chosen)) < 20
    # A larger share keeps everyone a smaller one held out.
    assert set(chosen) <= set(held_out(7, members, 10))
    assert held_out(7, members, 0) == []


@pytest.mark.parametrize("text", ["5", "2.5", "0", "50"])
def test_holdout_takes_a_percent_up_to_50(tmp_path, text):
    path = audience_file(tmp_path, "gold")
    assert sms_plan(path, NOW, text).holdout == float(text)


@pytest.mark.parametrize("text", ["51", "-1", "five", "nan", "inf"])
def test_holdout_outside_0_to_50_is_refused_naming_the_flag(tmp_path, text):
    path = audience_file(tmp_path, "gold")
    with pytest.raises(BroadcastError, match=r"^--holdout .*a percent of the audience from 0"):
        sms_plan(path, NOW, text)


def test_a_retried_page_holds_out_the_same_members(sqlite_db, tmp_path):
    factory = sqlite_db.factory
    members = add_members(factory, "gold", 60, NOW)
    fresh_ids(factory, NOW)
    with factory.begin() as session:
        broadcast_id = store_plan(
            session,
            sms_plan(audience_file(tmp_path, "gold"), NOW, "20"),
            now=NOW,
        ).id
    activities = BroadcastActivities(
        factory, build_delivery(worker_settings(quiet_hours=None), factory)
    )
    inp = BroadcastPageInput(
        broadcast_id=broadcast_id,
        key_prefix="run-1",
        channel="sms",
        template=TEMPLATE,
        topic="marketing",
        now=NOW,
        limit=100,
    )
    first = ActivityEnvironment().run(activities.broadcast_page, inp)
    again = ActivityEnvironment().run(activities.broadcast_page, inp)
    expected = held_out(broadcast_id, members, 20)
    assert expected  # 60 members at 20%: some
    assert first.skipped == again.skipped == {"held_out": len(expected)}
    assert first.ready == again.ready == [u for u in members if u not in expected]
    ledger = sends(factory, broadcast_id)
    assert sorted(u for u, m in ledger.items() if m.reason == "held_out") == expected


async def start_with_holdout(
    client: Client, factory: SessionFactory, task_queue: str, audience: Path, now: datetime
) -> int:
    """Start a broadcast holding out 10%, as ``lifecycle broadcast start --holdout 10``."""
    fresh_ids(factory, now)
    return await start_broadcast(
        client,
        factory,
        sms_plan(audience, now, "10"),
        task_queue=task_queue,
        now=now,
    )


async def test_held_out_members_get_no_message_and_a_held_out_row(
    time_env: WorkflowEnvironment, db: Database, task_queue: str, tmp_path: Path
):
    now = await time_env.get_current_time()
    members = add_members(db.factory, "gold", 200, now)
    async with running_worker(
        time_env.client, worker_settings(), db.factory, task_queue=task_queue
    ):
        broadcast_id = await start_with_holdout(
            time_env.client, db.factory, task_queue, audience_file(tmp_path, "gold"), now
        )
        handle = time_env.client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )
        result = await closed_result(handle)

    expected = held_out(broadcast_id, members, 10)
    assert 0 < len(expected) < 40  # about 20 of 200
    ledger = sends(db.factory, broadcast_id)
    assert sorted(ledger) == members
    assert {u: (m.status, m.reason) for u, m in ledger.items() if u in expected} == dict.fromkeys(
        expected, ("skipped", "held_out")
    )
    assert {m.status for u, m in ledger.items() if u not in expected} == {"sent"}
    sent_keys = {m.idempotency_key for u, m in ledger.items() if u not in expected}
    assert sorted(outbox_keys(db.factory)) == sorted(sent_keys)  # nothing to the held out
    assert result.skipped == {"held_out": len(expected)}
    assert result.sent == len(members) - len(expected)


def test_start_refuses_a_holdout_over_50_before_storing_anything(
    sqlite_db, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("LIFECYCLE_ENVIRONMENT", "development")
    argv = ["broadcast", "start", "--audience", str(audience_file(tmp_path, "gold"))]
    argv += ["--template", TEMPLATE, "--channel", "sms", "--holdout", "60"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "lifecycle: --holdout '60': a percent of the audience from 0 to 50, e.g. 5 (or 2.5)"
    )
