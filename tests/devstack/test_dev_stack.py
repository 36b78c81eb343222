"""``lifecycle dev`` as a user runs it: one command, a live stack, Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from support import assert_eventually, fail_if_exited


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_dev_stack_runs_a_journey_and_stops_on_ctrl_c(tmp_path: Path):
    temporal_port, ui_port, api_port = free_port(), free_port(), free_port()
    data = tmp_path / "data"
    env = os.environ | {
        "LIFECYCLE_DATA_DIR": str(data),
        "DATABASE_URL": f"sqlite:///{data / 'lifecycle.db'}",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "LIFECYCLE_TEMPORAL_UI_PORT": str(ui_port),
        "LIFECYCLE_API_PORT": str(api_port),
    }
    log = (tmp_path / "dev.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "dev"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        process_group=0,  # its own group, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 90

        def printed_once(line: str) -> str:
            printed = Path(log.name).read_text()
            fail_if_exited(proc, lambda: printed)
            assert line in printed, printed
            return printed

        printed = assert_eventually(
            lambda: printed_once("Ctrl-C stops everything"), timeout=90, interval=0.2
        )
        assert f"http://127.0.0.1:{api_port}" in printed
        assert f"http://127.0.0.1:{ui_port}" in printed  # the Temporal Web UI
        # The sweep scheduler runs too, with a cron job for the dormancy journey.
        printed = assert_eventually(
            lambda: printed_once("scheduler ready"),
            timeout=deadline - time.monotonic(),
            interval=0.2,
        )
        assert "dormancy_wakeup" in printed.split("scheduler ready")[1]

        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", auth=("dev-write-key", ""))
        traits = {"phone": "+8613900139000", "email": "dev@example.com"}
        # A user id the 10% holdout does not take, so the welcome SMS really goes out.
        user = "dev-user-1"
        assert api.post("/v1/identify", json={"userId": user, "traits": traits}).status_code == 200
        resp = api.post("/v1/track", json={"userId": user, "event": "user_signed_up"})
        assert resp.status_code == 200, resp.text + Path(log.name).read_text()

        engine = sa.create_engine(f"sqlite:///{data / 'lifecycle.db'}")

        def outbox() -> list[Any]:
            with engine.connect() as conn:
                return list(conn.execute(sa.text("select channel, recipient from outbox")).all())

        rows = assert_eventually(outbox, timeout=60, interval=0.1, message="a row in the outbox")
        assert rows == [("sms", "+8613900139000")]
        assert (data / "temporal.db").exists()
        engine.dispose()
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole group
        code = proc.wait(timeout=60)
    assert code == 0, Path(log.name).read_text()
    # The worker drained and said so before the stack stopped the Temporal server.
    assert "worker stopped" in Path(log.name).read_text().split("stopping …")[-1]
    for port in (temporal_port, api_port):
        assert not listening(port), f"port {port} still open after Ctrl-C"
