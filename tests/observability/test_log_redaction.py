"""Unsubscribe tokens are credentials: no log line carries one, the access log included."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from test_end_to_end import free_port

from observability.logs import JsonFormatter, RedactTokens

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "eyJ1IjoidTEiLCJjIjoiZW1haWwifQ.c2lnbmF0dXJlLW9mLXRoZS1saW5r"  # noqa: S105


def test_lifecycle_api_writes_no_unsubscribe_token_to_its_access_log(sqlite_db, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")} | {
        "LIFECYCLE_DATABASE_URL": sqlite_db.url,
        "LIFECYCLE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing there
        "LIFECYCLE_API_PORT": str(port),
    }
    log_file = tmp_path / "api.log"
    with log_file.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "cli", "api"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):  # until uvicorn listens
                try:
                    httpx.get(f"{base}/healthz", timeout=10)
                    break
                except httpx.ConnectError:
                    assert process.poll() is None, log_file.read_text()
                    time.sleep(0.1)
            httpx.get(f"{base}/u/{TOKEN}", timeout=10)
            httpx.post(f"{base}/u/{TOKEN}?source=mail", timeout=10)
            httpx.get(f"{base}/u/{TOKEN}/", timeout=10)
            httpx.get(f"{base}/healthz?token={TOKEN}&x=1", timeout=10)
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = log_file.read_text()
    assert 'GET /u/[redacted] HTTP/1.1" 400' in text, text
    assert 'POST /u/[redacted]?source=mail HTTP/1.1" 400' in text, text
    assert "/healthz?token=[redacted]&x=1" in text, text
    assert TOKEN not in text and TOKEN[:20] not in text, text


def test_the_filter_redacts_the_json_line_and_any_logger_of_ours():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactTokens())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/u/{TOKEN}", "1.1", 200)
        logger.info(f"followed https://crm.example.com/u/{TOKEN} from a mail")
        logger.info("a link: %(url)s", {"url": f"/u/{TOKEN}?token={TOKEN}"})
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue()
    assert TOKEN not in lines
    assert lines.count("/u/[redacted]") == 3
    assert '"GET /u/[redacted] HTTP/1.1\\" 200' in lines
