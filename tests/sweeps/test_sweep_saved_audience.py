"""A schedule naming a saved audience: each tick sweeps the version that is latest when it
begins, and a name deleted since publishing fails that tick alone, for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import Database
from sqlalchemy import delete, insert
from sweep_support import add_population, entered_users, publish_winback, sweep_worker
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from audiences.saved import save_audience
from cli import main
from journey_support import publish_text
from store.db import transaction
from store.models import SavedAudience, SweepTick, User
from triggers.scheduler import SweepScheduler
from workflows.ids import sweep_workflow_id
from workflows.sweep import SweepInput, SweepWorkflow

DAILY_TICK = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 Shanghai

CLUB = """\
id: {journey_id}
name: Club members, daily
trigger:
  schedule:
    cron: "0 10 * * *"
    audience: vip_club
goal: {{event: order_placed, within: 7d}}
re_entry: {{after: 30d}}
steps:
  - {{id: pause, type: wait, duration: 30d}}
"""


def save(db: Database, source: str) -> None:
    with transaction(db.factory) as session:
        save_audience(
            session, name="vip_club", source=source, saved_by="ana", note="", now=DAILY_TICK
        )


def add_tagged(db: Database, tags: dict[str, list[str]]) -> None:
    rows = [
        {
            "id": user_id,
            "created_at": DAILY_TICK - timedelta(days=90),
            "updated_at": DAILY_TICK,
            "traits": {},
            "tags": user_tags,
        }
        for user_id, user_tags in tags.items()
    ]
    with transaction(db.factory) as session:
        session.execute(insert(User), rows)


async def sweep_at(env, journey: str, tick: datetime, task_queue: str):
    """Run the journey's sweep of ``tick`` in pages of two, one page per run."""
    return await env.client.execute_workflow(
        SweepWorkflow.run,
        SweepInput(journey, tick, page_size=2, pages_per_run=1),
        id=sweep_workflow_id(journey, tick),
        task_queue=task_queue,
    )


async def test_each_tick_sweeps_the_latest_saved_version(dev_env, db, task_queue):
    journey = f"club_{task_queue[3:]}"
    add_tagged(db, {"u-1": ["vip"], "u-2": ["vip"], "u-3": ["vip", "svip"], "u-4": ["svip"]})
    save(db, "tag: vip\n")
    publish_text(db.factory, CLUB.format(journey_id=journey), DAILY_TICK - timedelta(days=3))
    async with sweep_worker(dev_env, db, task_queue):
        first = await sweep_at(dev_env, journey, DAILY_TICK, task_queue)
        assert (first.members, first.entered, first.audience_version) == (3, 3, 1)
        assert entered_users(db.factory, journey) == ["u-1", "u-2", "u-3"]

        # The marketer narrows the audience: the next tick reaches the new version's members.
        save(db, "tag: svip\n")
        tomorrow = DAILY_TICK + timedelta(days=1)
        second = await sweep_at(dev_env, journey, tomorrow, task_queue)
    assert (second.members, second.entered, second.audience_version) == (2, 1, 2)
    assert entered_users(db.factory, journey) == ["u-1", "u-2", "u-3", "u-4"]


async def test_a_deleted_saved_audience_fails_its_tick_and_the_other_journeys_sweep(
    dev_env, db, task_queue, monkeypatch, capsys
):
    club = f"club_{task_queue[3:]}"
    winback = f"winback_{task_queue[3:]}"
    save(db, "tag: vip\n")
    publish_text(db.factory, CLUB.format(journey_id=club), DAILY_TICK - timedelta(days=3))
    publish_winback(db.factory, DAILY_TICK - timedelta(days=3), journey_id=winback)
    dormant = add_population(db.factory, DAILY_TICK, dormant=5, active=2)
    with transaction(db.factory) as session:  # deleted after the journey was published
        session.execute(delete(SavedAudience).where(SavedAudience.name == "vip_club"))

    scheduler = SweepScheduler(
        factory=db.factory,
        client=dev_env.client,
        task_queue=task_queue,
        clock=lambda: DAILY_TICK + timedelta(minutes=5),
    )
    async with sweep_worker(dev_env, db, task_queue):
        await scheduler.refresh()  # starts both journeys' ticks, one after the other
        scheduler.shutdown()
        failed = dev_env.client.get_workflow_handle_for(
            SweepWorkflow.run, sweep_workflow_id(club, DAILY_TICK)
        )
        with pytest.raises(WorkflowFailureError) as caught:
            await failed.result()
        swept = await dev_env.client.get_workflow_handle_for(
            SweepWorkflow.run, sweep_workflow_id(winback, DAILY_TICK)
        ).result()

    cause = caught.value.cause
    assert isinstance(cause, ActivityError)
    error = cause.cause
    assert isinstance(error, ApplicationError)
    assert error.type == "UnknownAudience" and error.non_retryable
    assert f"journey {club}" in error.message
    assert "unknown audience 'vip_club'" in error.message
    assert cause.retry_state is not None and "NON_RETRYABLE" in cause.retry_state.name
    assert entered_users(db.factory, club) == []
    assert (swept.members, swept.entered) == (5, 5)
    assert entered_users(db.factory, winback) == dormant
    with transaction(db.factory) as session:
        rows = {r.journey_id: r for r in session.query(SweepTick)}
    # The failed tick says so (not "running" forever), and why.
    assert rows[club].started_at is not None and rows[club].finished_at is not None
    assert "unknown audience 'vip_club'" in (rows[club].error or "")
    assert rows[winback].finished_at is not None and rows[winback].error is None
    monkeypatch.setenv("DATABASE_URL", db.url)
    assert main(["sweeps", "list", "--journey", club]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[1].split()[1:4] == ["0", "0", "failed:"], listed
