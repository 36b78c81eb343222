"""LIFECYCLE_LOG_FORMAT: JSON lines with ids as fields, text by default, bad values refused."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli import main
from observability.logs import JsonFormatter

ROOT = Path(__file__).resolve().parents[2]


def json_lines(record_calls) -> list[dict]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("lifecycle.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        record_calls(logger)
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_has_time_level_logger_message_and_the_ids_passed_as_extra():
    before = datetime.now(UTC)
    [line] = json_lines(
        lambda log: log.warning(
            "message %s skipped", 42, extra={"message_id": 42, "user_id": "u-7", "journey_id": "j"}
        )
    )
    assert line["level"] == "WARNING"
    assert line["logger"] == "lifecycle.test.json"
    assert line["message"] == "message 42 skipped"
    assert (line["message_id"], line["user_id"], line["journey_id"]) == (42, "u-7", "j")
    assert line["time"].endswith("Z")
    logged_at = datetime.fromisoformat(line["time"])
    assert before - timedelta(seconds=1) <= logged_at <= datetime.now(UTC)


def test_an_exception_is_one_json_line_with_its_traceback():
    def fail(log: logging.Logger) -> None:
        try:
            raise ValueError("provider said no")
        except ValueError:
            log.exception("send failed for message %s", 9)

    [line] = json_lines(fail)
    assert line["level"] == "ERROR"
    assert "Traceback" in line["exception"] and "provider said no" in line["exception"]


def test_values_json_cannot_encode_are_written_as_text():
    when = datetime(2026, 11, 26, tzinfo=UTC)
    [line] = json_lines(lambda log: log.info("tick", extra={"tick": when, "queues": ("a", "b")}))
    assert line["tick"] == str(when) and line["queues"] == ["a", "b"]


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
        check=True,
    )


def test_entry_point_setup_switches_from_text_to_json_once_settings_are_read():
    code = (
        "import logging\n"
        "from observability.logs import configure_logging\n"
        "log = logging.getLogger('worker')\n"
        "configure_logging('text')\n"
        "log.info('before settings')\n"
        "configure_logging('json')\n"
        "log.info('worker ready', extra={'task_queues': ['lifecycle']})\n"
    )
    lines = _run_python(code).stderr.splitlines()
    assert len(lines) == 2  # one handler: the second setup replaced the first
    assert lines[0].endswith("INFO worker: before settings")
    line = json.loads(lines[1])
    assert line["message"] == "worker ready" and line["task_queues"] == ["lifecycle"]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LIFECYCLE_LOG_FORMAT", "xml", "bad setting LIFECYCLE_LOG_FORMAT: Input should be"),
        (
            "LIFECYCLE_WORKER_METRICS_ADDRESS",
            "localhost:9464",
            "bad setting LIFECYCLE_WORKER_METRICS_ADDRESS: write the metrics address as IP:port",
        ),
        (
            "LIFECYCLE_WORKER_METRICS_ADDRESS",
            "127.0.0.1:99999",
            "bad setting LIFECYCLE_WORKER_METRICS_ADDRESS: write the metrics address as IP:port",
        ),
    ],
)
def test_a_bad_operations_setting_is_one_line_naming_the_variable(
    monkeypatch, capsys, variable, value, expected
):
    monkeypatch.setenv(variable, value)
    assert main(["worker"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"lifecycle: {expected}") and err.count("\n") == 1
