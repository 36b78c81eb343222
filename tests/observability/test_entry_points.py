"""``lifecycle api`` as its own process with JSON logs; a worker whose metrics address is
taken keeps working and says why it has no endpoint."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from test_end_to_end import free_port

from observability.metrics import NullMetrics, metrics, start_metrics_endpoint
from support import assert_eventually, fail_if_exited

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def api_process(db_url: str, log_file: Path, **settings: str) -> Iterator[str]:
    """``lifecycle api`` as its own process on a free port (development, no Temporal
    there), logging to ``log_file``; yields its base URL once it answers, stops it after.
    ``settings`` are more ``LIFECYCLE_*`` variables, by name without the prefix."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")} | {
        "LIFECYCLE_ENVIRONMENT": "development",
        "LIFECYCLE_DATABASE_URL": db_url,
        "LIFECYCLE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing there
        "LIFECYCLE_API_PORT": str(port),
        **{f"LIFECYCLE_{name.upper()}": value for name, value in settings.items()},
    }
    with log_file.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "cli", "api"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
        base = f"http://127.0.0.1:{port}"
        try:

            def listening() -> bool:
                fail_if_exited(process, log_file.read_text)
                httpx.get(f"{base}/healthz", timeout=10)
                return True

            assert_eventually(
                listening,
                timeout=30,
                interval=0.1,
                message="uvicorn listening",
                retry_on=(httpx.ConnectError,),
            )
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_api_process_writes_json_lines_including_uvicorn_access_lines(sqlite_db, tmp_path):
    log_file = tmp_path / "api.log"
    with api_process(sqlite_db.url, log_file, log_format="json") as base:
        healthz = httpx.get(f"{base}/healthz", timeout=10)
        readyz = httpx.get(f"{base}/readyz", timeout=10)
    assert healthz.status_code == 200
    assert readyz.status_code == 503 and readyz.json()["down"] == ["temporal"]
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any("GET /healthz" in line["message"] for line in access), lines


def test_a_taken_metrics_address_leaves_the_worker_without_endpoint_and_says_so(caplog):
    caplog.set_level(logging.INFO)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        assert start_metrics_endpoint(address) is None
    assert isinstance(metrics(), NullMetrics)  # nothing recorded into a dead endpoint
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage().startswith(f"metrics endpoint not started on {address}")
    assert "Address already in use" in error.getMessage()


def test_an_empty_metrics_address_turns_the_endpoint_off(caplog):
    caplog.set_level(logging.INFO)
    assert start_metrics_endpoint("") is None
    assert isinstance(metrics(), NullMetrics) and not caplog.records


def test_api_with_two_processes_serves_one_port_and_logs_in_json(sqlite_db, tmp_path):
    log_file = tmp_path / "api.log"
    batch = {
        "batch": [{"type": "identify", "userId": f"u{i}", "messageId": f"m{i}"} for i in range(40)]
    }
    with api_process(sqlite_db.url, log_file, api_workers="2", log_format="json") as base:
        answers = [
            httpx.post(f"{base}/v1/batch", json=batch, auth=("dev-write-key", ""), timeout=30)
            for _ in range(4)
        ]
    assert [a.status_code for a in answers] == [200] * 4
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    started = [line for line in lines if "Started server process" in line["message"]]
    assert len(started) == 2, lines  # two processes, both logging JSON
    with sqlite_db.factory() as session:
        from sqlalchemy import func, select

        from store.models import Event

        assert session.scalar(select(func.count()).select_from(Event)) == 40  # stored once
