"""The production path on the real dev server: ``lifecycle worker`` as its own process with
JSON logs and its metrics endpoint, the API over HTTP, SMS through the real Twilio SDK to
the local Twilio server. The user's phone, email and the message text reach Twilio and
appear in no log line of either process."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from provider_servers import TWILIO_SID, TWILIO_TOKEN
from test_api_metrics import samples, value
from test_end_to_end import KEY, api_server, free_port, settings_for, track

from config import Settings
from journey_support import publish_shipped, user_in
from support import assert_eventually_async, fail_if_exited

pytest_plugins = ["provider_fixtures"]

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+86 139 1234 5678"
PHONE_DIGITS = "13912345678"
EMAIL = "li.private@example.com"


@contextmanager
def worker_process(env: dict[str, str], log_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``lifecycle worker`` (``python -m cli worker``), stopped on the way out."""
    with log_file.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)


def worker_env(settings: Settings, twilio_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``lifecycle worker`` on the test's database, dev server and task
    queue, with JSON logs and SMS through Twilio at ``twilio_url``."""
    return (
        {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
        | {
            "LIFECYCLE_ENVIRONMENT": "development",
            "LIFECYCLE_DATABASE_URL": settings.database_url,
            "LIFECYCLE_TEMPORAL_ADDRESS": settings.temporal_address,
            "LIFECYCLE_TASK_QUEUE": settings.task_queue,
            "LIFECYCLE_WRITE_KEY": KEY,
            "LIFECYCLE_QUIET_HOURS": "off",
            "LIFECYCLE_LOG_FORMAT": "json",
            "LIFECYCLE_WORKER_METRICS_ADDRESS": "",
            "LIFECYCLE_SMS_PROVIDER": "twilio",
            "LIFECYCLE_TWILIO_ACCOUNT_SID": TWILIO_SID,
            "LIFECYCLE_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "LIFECYCLE_TWILIO_FROM_NUMBER": "+15005550006",
            "LIFECYCLE_TWILIO_BASE_URL": twilio_url,
        }
        | extra
    )


def log_lines(log_file: Path) -> list[dict]:
    """The JSON lines the process has finished writing (a line still being written waits)."""
    text = log_file.read_text()
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def logged(log_file: Path, prefix: str) -> bool:
    """Whether the process has logged a line starting with ``prefix``."""
    return any(line["message"].startswith(prefix) for line in log_lines(log_file))


async def until_ready(worker: subprocess.Popen[bytes], log_file: Path) -> None:
    """Wait for the worker's ready line; fail at once, with its log, if it exits first."""

    def ready() -> bool:
        fail_if_exited(worker, log_file.read_text)
        return logged(log_file, "worker ready")

    await assert_eventually_async(ready, timeout=60, message="the worker's ready line")


async def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    async with httpx.AsyncClient() as http:
        return samples((await http.get(url)).text)


async def test_worker_serves_sdk_and_lifecycle_metrics_and_logs_no_contact_details(
    dev_env, db, task_queue, twilio_server, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    metrics_address = f"127.0.0.1:{free_port()}"
    settings = settings_for(db, dev_env, task_queue)
    env = worker_env(settings, twilio_server.url, LIFECYCLE_WORKER_METRICS_ADDRESS=metrics_address)
    publish_shipped(db.factory, "new_user_coupon", datetime.now(UTC))
    user = user_in("treatment", f"private-{task_queue}")
    worker_log = tmp_path / "worker.log"
    metrics_url = f"http://{metrics_address}/metrics"

    with worker_process(env, worker_log) as worker:
        await until_ready(worker, worker_log)
        async with api_server(settings) as http:
            identify = {"userId": user, "traits": {"phone": PHONE, "email": EMAIL}}
            assert (await http.post("/v1/identify", json=identify)).status_code == 200
            resp = await http.post("/v1/track", json=track(user, "user_signed_up"))
            assert resp.status_code == 200, resp.text
            await assert_eventually_async(
                lambda: len(twilio_server.messages) == 1, timeout=30, message="the SMS at Twilio"
            )

            sent = ("lifecycle_sends_total",)

            async def counted() -> dict[tuple[str, frozenset], float]:
                page = await scrape(metrics_url)
                assert value(page, *sent, channel="sms", provider="twilio") >= 1, page
                return page

            # The counter moves once the ledger says sent.
            page = await assert_eventually_async(counted, timeout=30, interval=0.1)
            api_page = samples((await http.get("/metrics")).text)

    # The worker's one endpoint: the SDK's metrics and ours.
    assert value(page, *sent, channel="sms", provider="twilio") == 1
    latency = "lifecycle_provider_latency_seconds_count"
    assert value(page, latency, channel="sms", provider="twilio") == 1
    sdk = {name for name, _ in page if name.startswith("temporal_")}
    assert {"temporal_request_total", "temporal_activity_execution_latency_count"} <= sdk
    # The API's: the signup it ingested and the enrollment it started.
    assert value(api_page, "lifecycle_events_ingested_total", type="track", event="user_signed_up")
    started = value(
        api_page,
        "lifecycle_enrollments_started_total",
        journey="new_user_coupon",
        group="treatment",
    )
    assert started == 1

    # JSON lines, each with the four fields; the ready line names the task queues.
    lines = log_lines(worker_log)
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    [ready_line] = [line for line in lines if line["message"].startswith("worker ready")]
    channels = ("sms", "email", "push")
    assert ready_line["task_queues"] == sorted(
        [task_queue]
        + [f"{task_queue}.{channel}" for channel in channels]
        + [f"{task_queue}.{channel}.bulk" for channel in channels]
    )

    # Twilio got the number and the text; no log line of either process did.
    [request] = twilio_server.messages
    assert request.body["To"] == "+8613912345678"
    text = request.body["Body"]
    logged = worker_log.read_text() + "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records
    )
    assert caplog.records and lines  # both processes did log
    for private in (PHONE_DIGITS, EMAIL, text[:12], text[-12:]):
        assert private not in logged, private
