"""The whole path on the real Temporal dev server: HTTP API (uvicorn) → router → worker → outbox."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import uvicorn
from temporalio.client import WorkflowExecutionStatus

from api.server import build_app
from config import Settings
from journey_support import enrollments, ledger, outbox, publish_shipped, user_in
from support import assert_eventually_async
from worker import running_worker
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow

KEY = "e2e-write-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_for(db, env, task_queue: str, **overrides) -> Settings:
    values = {
        "environment": "development",
        "database_url": db.url,
        "temporal_address": env.client.service_client.config.target_host,
        "task_queue": task_queue,
        "write_key": KEY,
    }
    return Settings(**(values | overrides))


@asynccontextmanager
async def api_server(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The production app (``api.server.build_app``) served by uvicorn on 127.0.0.1."""
    port = free_port()
    config = uvicorn.Config(build_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await assert_eventually_async(lambda: server.started, timeout=30, message="uvicorn listening")
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", auth=(KEY, ""), timeout=30
        ) as http:
            yield http
    finally:
        server.should_exit = True
        await task


def track(user: str, event: str, message_id: str | None = None, **props) -> dict:
    return {
        "userId": user,
        "event": event,
        "properties": props,
        "messageId": message_id or str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
    }


async def test_signup_over_http_starts_journey_and_sends(dev_env, db, task_queue):
    settings = settings_for(db, dev_env, task_queue)
    publish_shipped(db.factory, "new_user_coupon", datetime.now(UTC))
    user = user_in("treatment", f"e2e-{task_queue}")
    async with (
        running_worker(dev_env.client, settings, db.factory, task_queue=task_queue),
        api_server(settings) as http,
    ):
        identify = {
            "userId": user,
            "traits": {"phone": "+86 138 0013 8000", "email": "e2e@example.com", "locale": "en"},
        }
        assert (await http.post("/v1/identify", json=identify)).json() == {"success": True}
        signup = track(user, "user_signed_up", channel="app")
        resp = await http.post("/v1/track", json=signup)
        assert resp.status_code == 200, resp.text

        await assert_eventually_async(
            lambda: len(outbox(db.factory)) == 1,
            timeout=30,
            message="the welcome SMS in the outbox",
        )
        (sms,) = outbox(db.factory)
        assert sms.channel == "sms" and sms.recipient == "+8613800138000"
        assert "Reply STOP to opt out" in sms.body  # the user's locale is en

        handle = dev_env.client.get_workflow_handle_for(
            JourneyWorkflow.run, journey_workflow_id("new_user_coupon", user)
        )
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        first_run = description.run_id

        # The same signup again (a client retry) and a second signup event: still one run.
        assert (await http.post("/v1/track", json=signup)).status_code == 200
        assert (await http.post("/v1/track", json=track(user, "user_signed_up"))).status_code == 200
        assert (await handle.describe()).run_id == first_run
        assert len(enrollments(db.factory, user)) == 1

        # Ordering is the goal: the run ends converted, the day-2 push never goes out.
        resp = await http.post("/v1/track", json=track(user, "order_placed", total=88))
        assert resp.status_code == 200
        result = await asyncio.wait_for(handle.result(), timeout=30)

    assert result.converted and result.exit_reason == "converted"
    assert [m.step_id for m in ledger(db.factory, user)] == ["welcome_sms"]
    assert enrollments(db.factory, user)[0].converted_at is not None


async def test_trigger_stored_while_temporal_is_down_is_routed_on_retry(
    dev_env, sqlite_db, task_queue
):
    db = sqlite_db
    publish_shipped(db.factory, "new_user_coupon", datetime.now(UTC))
    user = user_in("treatment", f"e2e-down-{task_queue}")
    signup = track(user, "user_signed_up")
    nowhere = settings_for(db, dev_env, task_queue, temporal_address=f"127.0.0.1:{free_port()}")
    async with api_server(nowhere) as http:
        await http.post("/v1/identify", json={"userId": user, "traits": {"phone": "+15555550100"}})
        resp = await http.post("/v1/track", json=signup)
    assert resp.status_code == 503
    assert "retry" in resp.json()["error"]
    assert enrollments(db.factory, user) == []

    settings = settings_for(db, dev_env, task_queue)
    async with (
        running_worker(dev_env.client, settings, db.factory, task_queue=task_queue),
        api_server(settings) as http,
    ):
        resp = await http.post("/v1/track", json=signup)  # the client's retry
        assert resp.status_code == 200
        await assert_eventually_async(
            lambda: len(outbox(db.factory)) == 1, timeout=30, message="the welcome SMS"
        )
    assert len(enrollments(db.factory, user)) == 1


async def test_old_trigger_is_stored_but_starts_nothing(dev_env, sqlite_db, task_queue):
    db = sqlite_db
    publish_shipped(db.factory, "new_user_coupon", datetime.now(UTC))
    user = f"e2e-old-{task_queue}"
    settings = settings_for(db, dev_env, task_queue)
    old = track(user, "user_signed_up") | {
        "timestamp": (datetime.now(UTC) - timedelta(days=3)).isoformat()
    }
    async with api_server(settings) as http:
        assert (await http.post("/v1/track", json=old)).status_code == 200
    assert enrollments(db.factory, user) == []
