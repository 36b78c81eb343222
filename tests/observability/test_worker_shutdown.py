"""A deploy stops ``lifecycle worker`` with SIGTERM: the worker takes no new tasks, lets the
provider call it is making finish and record its result, then exits 0. Killed at once instead,
the SMS would reach Twilio with the ledger still saying it was never sent, and the retry on
the next worker would send it twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from test_end_to_end import api_server, settings_for, track
from test_worker_metrics import log_lines, logged, until_ready, worker_env, worker_process

from journey_support import ledger, publish_shipped, user_in
from support import assert_eventually_async

pytest_plugins = ["provider_fixtures"]


@asynccontextmanager
async def welcome_sms_at_twilio(
    db, settings, twilio_server, worker_log: Path, user: str
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``lifecycle worker`` running, ``user`` signed up through the API, and the welcome SMS
    request received by Twilio (held there as ``slow_next`` says): yields the worker."""
    publish_shipped(db.factory, "new_user_coupon", datetime.now(UTC))
    with worker_process(worker_env(settings, twilio_server.url), worker_log) as worker:
        await until_ready(worker, worker_log)
        async with api_server(settings) as http:
            identify = {"userId": user, "traits": {"phone": "+8613800138000"}}
            assert (await http.post("/v1/identify", json=identify)).status_code == 200
            assert (await http.post("/v1/track", json=track(user, "user_signed_up"))).is_success
            await assert_eventually_async(
                lambda: len(twilio_server.messages) == 1, timeout=30, message="the SMS at Twilio"
            )
            yield worker


async def test_sigterm_lets_the_send_in_flight_finish_and_record_then_exits(
    dev_env, db, task_queue, twilio_server, tmp_path
):
    user = user_in("treatment", f"drain-{task_queue}")
    worker_log = tmp_path / "worker.log"
    twilio_server.slow_next(3)  # the welcome SMS is still at Twilio when SIGTERM comes
    settings = settings_for(db, dev_env, task_queue)
    async with welcome_sms_at_twilio(db, settings, twilio_server, worker_log, user) as worker:
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 30)

    assert code == 0, worker_log.read_text()
    lines = log_lines(worker_log)
    messages = [line["message"] for line in lines]
    [stopping] = [line for line in lines if line["message"].startswith("worker stopping")]
    assert messages[-1] == "worker stopped", messages
    # The signal came while Twilio still held the request: the drain waited for its answer.
    [request] = twilio_server.messages
    assert request.answered_at is not None
    assert datetime.fromisoformat(stopping["time"]) < request.answered_at
    # The call finished and its result is in the ledger: nothing for a retry to send again.
    [sms] = ledger(db.factory, user)
    assert (sms.step_id, sms.status) == ("welcome_sms", "sent")
    assert sms.provider_message_id and sms.provider_message_id.startswith("SM")
    assert len(twilio_server.messages) == 1


async def test_a_second_sigterm_kills_the_draining_worker_at_once(
    dev_env, db, task_queue, twilio_server, tmp_path
):
    user = user_in("treatment", f"impatient-{task_queue}")
    worker_log = tmp_path / "worker.log"
    twilio_server.slow_next(20)
    settings = settings_for(db, dev_env, task_queue)
    async with welcome_sms_at_twilio(db, settings, twilio_server, worker_log, user) as worker:
        worker.send_signal(signal.SIGTERM)
        await assert_eventually_async(
            lambda: logged(worker_log, "worker stopping"), timeout=30, message="the stopping line"
        )
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 10)  # long before Twilio answers

    assert code == -signal.SIGTERM, worker_log.read_text()
    [request] = twilio_server.messages
    assert request.answered_at is None  # still held when the process went
