"""A body that never arrives whole: the client that goes away is an info line, not an error
with a traceback; the one that stalls is cut off with 408 after LIFECYCLE_BODY_READ_TIMEOUT.
Against the API process's app served by uvicorn on 127.0.0.1, with a raw socket. And a gzip
body is inflated only up to the size limit."""

from __future__ import annotations

import base64
import gzip
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from test_end_to_end import free_port

from api.body import gunzip_limited
from api.server import build_app
from config import DEV_WRITE_KEY, Settings
from support import assert_eventually
from triggers.segment import PayloadError

BODY = b'{"type": "track", "userId": "u1", "event": "signed_up", "properties": {}}'


@pytest.fixture
def server(sqlite_db) -> Iterator[int]:
    settings = Settings(
        database_url=sqlite_db.url,
        temporal_address=f"127.0.0.1:{free_port()}",  # nothing there; nothing is routed
        body_read_timeout=0.5,
    )
    port = free_port()
    config = uvicorn.Config(
        build_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="off"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    assert_eventually(
        lambda: running.started, timeout=10, interval=0.02, message="uvicorn listening"
    )
    yield port
    running.should_exit = True
    thread.join(10)


def half_a_track_call(port: int) -> socket.socket:
    auth = base64.b64encode(f"{DEV_WRITE_KEY}:".encode()).decode()
    head = (
        "POST /v1/track HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Authorization: Basic {auth}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head.encode() + BODY[: len(BODY) // 2])
    return sock


def test_a_client_gone_mid_body_is_an_info_line_without_traceback(server, caplog):
    caplog.set_level(logging.INFO)
    sock = half_a_track_call(server)
    time.sleep(0.1)  # the server is reading the body when the client goes
    sock.close()
    assert_eventually(
        lambda: any("went away" in r.getMessage() for r in caplog.records),
        timeout=5,
        interval=0.02,
        message="the went-away line",
    )
    time.sleep(0.1)  # anything logged after it would show up by now
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    [gone] = [r for r in caplog.records if "went away" in r.getMessage()]
    assert gone.levelno == logging.INFO and gone.exc_info is None


def test_a_stalled_body_is_cut_off_with_408(server, caplog):
    caplog.set_level(logging.INFO)
    sock = half_a_track_call(server)
    started = time.monotonic()
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert 0.4 < time.monotonic() - started < 5
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_the_body_read_timeout_is_a_setting(monkeypatch):
    assert Settings(_env_file=None).body_read_timeout == 30  # type: ignore[call-arg]
    monkeypatch.setenv("LIFECYCLE_BODY_READ_TIMEOUT", "5")
    assert Settings(_env_file=None).body_read_timeout == 5  # type: ignore[call-arg]


def test_gunzip_accepts_concatenated_members() -> None:
    data = gzip.compress(b'{"a": ') + gzip.compress(b"1}")
    assert gunzip_limited(data, 100) == b'{"a": 1}'


def test_gunzip_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"0" * 1_000_000)
    with pytest.raises(PayloadError) as info:
        gunzip_limited(bomb, 1024)
    assert info.value.status == 413
    assert gunzip_limited(gzip.compress(b"0" * 1024), 1024) == b"0" * 1024
