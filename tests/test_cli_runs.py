"""``lifecycle runs where`` and ``lifecycle runs eject``, run in-process against a SQLite file
and the time-skipping server, with the real worker behind the journey's runs."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from runs_support import JOURNEY_ID, ejections, exited, journey_running
from test_cli import assert_one_line_error, run


@pytest.fixture
def cli(sqlite_db: Any, time_env: Any, task_queue: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI's settings: the test's database and Temporal, no stray settings."""
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("LIFECYCLE_ENVIRONMENT", "development")
    monkeypatch.setenv("TEMPORAL_ADDRESS", time_env.client.service_client.config.target_host)
    monkeypatch.setenv("LIFECYCLE_TASK_QUEUE", task_queue)
    return sqlite_db


async def lifecycle(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(run, capsys, *argv)


async def test_where_then_eject_by_user_and_by_step(cli, time_env, task_queue, capsys):
    users = {f"w1-{task_queue}": "wechat", f"n1-{task_queue}": "email"}
    users |= {f"n2-{task_queue}": "email", f"p1-{task_queue}": "phone"}
    w1, n1, n2, p1 = users
    async with journey_running(time_env, cli, task_queue, users) as t0:
        code, out, err = await lifecycle(capsys, "runs", "where", JOURNEY_ID)
        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert lines[0] == f"{JOURNEY_ID}: 4 open run(s)"
        rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
        assert rows["nap"][:2] == ["2", f"{t0 + timedelta(days=2):%Y-%m-%d}"]
        assert rows["await_view"][:2] == ["1", f"{t0 + timedelta(days=3):%Y-%m-%d}"]
        assert rows["held_push"][0] == "1"
        assert rows["route"] == ["0", "-"]

        code, out, _ = await lifecycle(capsys, "runs", "where", JOURNEY_ID, "--step", "nap")
        assert code == 0
        assert sorted(ln.split()[0] for ln in out.splitlines() if ln.startswith("  ")) == sorted(
            [n1, n2]
        )
        assert "timer until" in out

        code, out, _ = await lifecycle(capsys, "runs", "where", JOURNEY_ID, "--json")
        doc = json.loads(out)
        assert (doc["open"], doc["sampled"]) == (4, False)
        view = next(s for s in doc["steps"] if s["step"] == "await_view")
        assert view["count"] == 1
        assert view["users"][0]["user_id"] == w1
        assert (view["users"][0]["waiting"], view["users"][0]["event"]) == (
            "event",
            "product_viewed",
        )

        code, out, err = await lifecycle(
            capsys, "runs", "eject", JOURNEY_ID, "--user", n1, "--user", "nobody",
            "--reason", "asked to stop", "--actor", "ops-alice",
        )  # fmt: skip
        assert code == 0, err
        assert out == f"ejected 1 run(s) of {JOURNEY_ID} by ops-alice: asked to stop\n"
        assert err == f"lifecycle: nobody has no open run in {JOURNEY_ID}\n"

        code, out, err = await lifecycle(
            capsys, "runs", "eject", JOURNEY_ID, "--step", "held_push", "--all",
            "--reason", "wrong price",
        )  # fmt: skip
        assert code == 0, err
        assert out.startswith(f"ejected 1 run(s) of {JOURNEY_ID} by ")
        await exited(cli.factory, {w1: None, n1: "ejected", n2: None, p1: "ejected"})
    facts = ejections(cli.factory)
    assert facts[n1]["actor"] == "ops-alice" and facts[p1]["reason"] == "wrong price"
    assert facts[p1]["actor"]  # the OS user


async def test_refusals_are_one_line(cli, capsys):
    code, _, err = await lifecycle(capsys, "runs", "where", "nope")
    assert code == 1
    assert assert_one_line_error(err) == "lifecycle: no journey 'nope' is published or shipped"
    code, _, err = await lifecycle(capsys, "runs", "where", "new_user_coupon", "--step", "nope")
    assert assert_one_line_error(err) == "lifecycle: journey 'new_user_coupon' has no step 'nope'"
    eject = ["runs", "eject", "new_user_coupon", "--reason", "r"]
    code, _, err = await lifecycle(capsys, *eject, "--step", "nope", "--all")
    assert assert_one_line_error(err) == "lifecycle: journey 'new_user_coupon' has no step 'nope'"
    code, _, err = await lifecycle(capsys, *eject, "--step", "wait_day2")
    assert assert_one_line_error(err) == (
        "lifecycle: --step ejects everyone at 'wait_day2': add --all to confirm"
    )
    code, _, err = await lifecycle(capsys, *eject)
    assert "--user U (repeatable) or --step S --all" in assert_one_line_error(err)
    code, _, err = await lifecycle(capsys, *eject, "--user", "u1", "--step", "wait_day2")
    assert assert_one_line_error(err) == "lifecycle: give --user or --step, not both"
    code, _, err = await lifecycle(capsys, *eject, "--user", "u1")
    assert code == 1
    assert assert_one_line_error(err) == (
        "lifecycle: nothing ejected: no open run of new_user_coupon for u1"
    )
