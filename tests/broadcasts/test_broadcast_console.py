"""The console's broadcast screen on a Temporal dev server: Schedule stores the row
``lifecycle broadcast start`` would and starts its workflow; the pause, resume and cancel
buttons signal it; a broadcast's page shows its progress while it runs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from broadcast_support import add_members, broadcast_row, fresh_ids, sends
from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from config import Settings
from console.app import console_app
from message_templates.render import TemplateRenderer
from triggers.broadcast_preview import local_instant
from triggers.broadcasts import plan_broadcast
from worker import running_worker
from workflows.broadcast import BroadcastWorkflow
from workflows.ids import broadcast_workflow_id

TOKEN = "console-broadcast-token"  # noqa: S105
SHANGHAI = ZoneInfo("Asia/Shanghai")


def settings_for(task_queue: str, url: str) -> Settings:
    return Settings(
        environment="test",
        admin_token=TOKEN,
        write_key="console-broadcast-write-key",
        unsubscribe_secret=SecretStr("console-broadcast-unsubscribe-secret"),
        database_url=url,
        task_queue=task_queue,
        quiet_hours=None,
        sms_rate_per_second=10_000,
        sms_broadcast_rate_per_second=10_000,
    )


@pytest.fixture
async def console(dev_env, db, task_queue) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A logged-in console on the dev server's client (in this test's event loop) and its
    CSRF token."""

    async def client() -> Client:
        return dev_env.client

    app = FastAPI()
    app.mount(
        "/console",
        console_app(settings_for(task_queue, db.url), session_factory=db.factory, temporal=client),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        answer = await http.post("/console/login", data={"token": TOKEN})
        assert answer.status_code == 303
        page = (await http.get("/console/broadcasts")).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf
        yield http, csrf.group(1)


def form_at(send_at: datetime) -> dict[str, str]:
    return {
        "name": "VIP 618",
        "audience": "mother_and_baby",
        "template": "sale_preheat_sms",
        "channel": "sms",
        "send_at": send_at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M"),
        "timezone": "Asia/Shanghai",
        "rate": "50/s",
        "holdout": "5",
        "topic": "marketing",
    }


async def test_schedule_stores_the_clis_row_starts_it_and_the_buttons_signal_it(
    console, dev_env, db, task_queue
):
    http, csrf = console
    now = await dev_env.get_current_time()
    fresh_ids(db.factory, now)
    form = form_at(now + timedelta(hours=2))
    answer = await http.post("/console/broadcasts", data=form | {"csrf": csrf})
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/console/broadcasts/(\d+)\?did=scheduled", answer.headers["location"])
    assert found
    broadcast_id = int(found.group(1))

    cli = plan_broadcast(
        TemplateRenderer(),
        audience="mother_and_baby",
        template="sale_preheat_sms",
        channel="sms",
        at=local_instant(form["send_at"], "Asia/Shanghai"),
        rate="50/s",
        name="VIP 618",
        topic="marketing",
        now=now,
        holdout="5",
    )
    row = broadcast_row(db.factory, broadcast_id)
    stored = (row.name, row.audience, row.audience_source, row.template, row.channel)
    assert stored == (cli.name, cli.audience_data, cli.audience_source, cli.template, cli.channel)
    assert (row.topic, row.send_at, row.rate_per_second, row.holdout) == (
        cli.topic,
        cli.send_at,
        cli.rate_per_second,
        cli.holdout,
    )
    assert (row.status, row.workflow_id) == ("scheduled", broadcast_workflow_id(broadcast_id))
    handle = dev_env.client.get_workflow_handle_for(BroadcastWorkflow.run, row.workflow_id)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    # No worker runs: the page says so rather than waiting, and offers pause and cancel.
    page = (await http.get(f"/console/broadcasts/{broadcast_id}?did=scheduled")).text
    assert "Scheduled: the broadcast starts at its send time." in page
    assert "Progress unavailable: no worker answered" in page
    assert f'action="/console/broadcasts/{broadcast_id}/pause"' in page
    assert f'action="/console/broadcasts/{broadcast_id}/cancel"' in page

    async with running_worker(
        dev_env.client, settings_for(task_queue, db.url), db.factory, task_queue=task_queue
    ):
        page = (await http.get(f"/console/broadcasts/{broadcast_id}")).text
        assert "scheduled · 0 paged · 0 sent" in page  # the progress query's words
        assert 'http-equiv="refresh"' in page
        for signal in ("pause", "resume", "cancel"):
            path = f"/console/broadcasts/{broadcast_id}/{signal}"
            steered = await http.post(path, data={"csrf": csrf})
            assert steered.status_code == 303
            assert steered.headers["location"] == f"/console/broadcasts/{broadcast_id}?did={signal}"
        assert (await handle.result()).status == "cancelled"
    signalled = [
        event.workflow_execution_signaled_event_attributes.signal_name
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signalled == ["pause", "resume", "cancel"]
    page = (await http.get(f"/console/broadcasts/{broadcast_id}?did=cancel")).text
    assert "Cancel sent" in page and "cancelled: 0 recipient(s); ledger: nothing yet" in page
    assert 'id="progress"' not in page


async def test_a_running_broadcast_shows_its_progress_until_it_completes(
    console, dev_env, db, task_queue
):
    http, csrf = console
    now = await dev_env.get_current_time()
    fresh_ids(db.factory, now)
    members = add_members(db.factory, "m", 3, now, tags=["母婴人群"])
    settings = settings_for(task_queue, db.url)
    async with running_worker(dev_env.client, settings, db.factory, task_queue=task_queue):
        answer = await http.post(
            "/console/broadcasts", data=form_at(now) | {"csrf": csrf, "send_at": "", "holdout": ""}
        )
        assert answer.status_code == 303, answer.text
        broadcast_id = int(answer.headers["location"].split("/")[-1].split("?")[0])
        handle = dev_env.client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )
        await handle.result()
    page = (await http.get(f"/console/broadcasts/{broadcast_id}")).text
    assert "completed: 3 recipient(s); ledger: sent 3" in page
    assert "money review, PROVISIONAL until" in page
    assert sorted(sends(db.factory, broadcast_id)) == members
    steered = await http.post(f"/console/broadcasts/{broadcast_id}/pause", data={"csrf": csrf})
    assert steered.status_code == 409
    assert f"broadcast {broadcast_id} is completed: nothing to pause" in steered.text
