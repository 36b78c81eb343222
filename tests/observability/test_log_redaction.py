"""Unsubscribe tokens are credentials: no log line carries one, the access log included."""

from __future__ import annotations

import io
import logging

import httpx
from test_entry_points import api_process

from observability.logs import JsonFormatter, RedactTokens

TOKEN = "eyJ1IjoidTEiLCJjIjoiZW1haWwifQ.c2lnbmF0dXJlLW9mLXRoZS1saW5r"  # noqa: S105


def test_lifecycle_api_writes_no_unsubscribe_token_to_its_access_log(sqlite_db, tmp_path):
    log_file = tmp_path / "api.log"
    with api_process(sqlite_db.url, log_file) as base:
        httpx.get(f"{base}/u/{TOKEN}", timeout=10)
        httpx.post(f"{base}/u/{TOKEN}?source=mail", timeout=10)
        httpx.get(f"{base}/u/{TOKEN}/", timeout=10)
        httpx.get(f"{base}/healthz?token={TOKEN}&x=1", timeout=10)
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
