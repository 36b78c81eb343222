"""``lifecycle broadcast``: start (checks first, then a progress bar until done), status,
list, pause / cancel, over a real Temporal dev server and a worker; bad input refused in one
line naming the flag or file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from broadcast_support import add_members, audience_file, fresh_ids, sends, worker_settings

from cli import main
from store.db import make_engine, make_session_factory
from store.migrate import upgrade
from support import assert_eventually_async
from worker import running_worker


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite file for the CLI and no stray settings; its URL."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", url)
    monkeypatch.setenv("LIFECYCLE_ENVIRONMENT", "development")
    upgrade(make_engine(url))
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_start_shows_progress_until_done_then_status_and_list(
    dev_env, cli_env, task_queue, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("LIFECYCLE_TASK_QUEUE", task_queue)
    factory = make_session_factory(make_engine(cli_env))
    now = await dev_env.get_current_time()
    members = add_members(factory, "vip", 12, now)
    fresh_ids(factory, now)
    audience = audience_file(tmp_path, "vip")
    settings = worker_settings(database_url=cli_env, task_queue=task_queue)
    async with running_worker(dev_env.client, settings, factory, task_queue=task_queue):
        argv = ["broadcast", "start", "--audience", str(audience), "--template"]
        argv += ["sale_preheat_sms", "--channel", "sms", "--rate", "50/s", "--name", "VIP 618"]
        code, out, err = await asyncio.to_thread(run, capsys, *argv)
        assert code == 0, err
        assert "12 in members, sending now" in out
        assert "12/12" in out and "completed" in out and "12 sent" in out  # the final bar
        broadcast_id = out.split()[1]

        code, out, _ = await asyncio.to_thread(run, capsys, "broadcast", "status", broadcast_id)
        assert code == 0
        assert "VIP 618" in out
        assert "completed: 12 recipient(s); ledger: sent 12" in out

        code, out, _ = await asyncio.to_thread(run, capsys, "broadcast", "list")
        assert "completed" in out and "VIP 618" in out

        code, _, err = await asyncio.to_thread(run, capsys, "broadcast", "pause", broadcast_id)
        assert code == 1
        assert err.strip() == f"lifecycle: broadcast {broadcast_id} is completed: nothing to pause"
    ledger = sends(factory, int(broadcast_id))
    assert sorted(ledger) == members
    assert {m.status for m in ledger.values()} == {"sent"}


async def test_start_no_wait_at_a_later_time_then_cancel(
    dev_env, cli_env, task_queue, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("LIFECYCLE_TASK_QUEUE", task_queue)
    factory = make_session_factory(make_engine(cli_env))
    now = await dev_env.get_current_time()
    add_members(factory, "later", 3, now)
    fresh_ids(factory, now)
    settings = worker_settings(database_url=cli_env, task_queue=task_queue)
    async with running_worker(dev_env.client, settings, factory, task_queue=task_queue):
        argv = ["broadcast", "start", "--audience", str(audience_file(tmp_path, "later"))]
        argv += ["--template", "sale_preheat_sms", "--channel", "sms"]
        argv += ["--at", "2099-06-15T20:00+08:00"]
        code, out, err = await asyncio.to_thread(run, capsys, *argv)
        assert code == 0, err
        assert "sending at 2099-06-15 12:00Z" in out
        broadcast_id = out.split()[1]
        code, out, _ = await asyncio.to_thread(run, capsys, "broadcast", "status", broadcast_id)
        assert "scheduled · 0 paged · 0 sent" in out

        code, out, _ = await asyncio.to_thread(run, capsys, "broadcast", "cancel", broadcast_id)
        assert (code, out.strip()) == (0, f"broadcast {broadcast_id}: cancel sent")

        async def cancelled() -> str:
            _, out, _ = await asyncio.to_thread(run, capsys, "broadcast", "status", broadcast_id)
            assert "cancelled: 0 recipient(s)" in out, out
            return out

        out = await assert_eventually_async(cancelled, timeout=60, interval=0.1)
        assert "cancelled: 0 recipient(s); ledger: nothing yet" in out
    assert sends(factory, int(broadcast_id)) == {}


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--channel", "fax"], "--channel 'fax': one of sms, email, push"),
        (["--rate", "fast"], "--rate 'fast': give messages per second, e.g. 50/s (or 3000/m)"),
        (["--at", "2099-06-15T20:00"], "--at '2099-06-15T20:00': give an offset"),
        (["--at", "2001-01-01T00:00Z"], "--at '2001-01-01T00:00Z': in the past"),
        (["--at", "soon"], "--at 'soon': not an ISO-8601 instant"),
        (["--template", "nope"], "--template nope: no template named 'nope'"),
        # A template that needs a coupon: a broadcast has none.
        (["--template", "new_user_welcome_sms"], "--template new_user_welcome_sms: "),
        (["--template", "cart_reminder_push"], "written for push, not sms"),
        (["--audience", "missing.yaml"], "--audience missing.yaml: no such file"),
    ],
)
def test_bad_input_is_refused_in_one_line_naming_the_flag(cli_env, tmp_path, capsys, flags, error):
    audience = audience_file(tmp_path, "any")
    argv = {"--audience": str(audience), "--template": "sale_preheat_sms", "--channel": "sms"}
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        argv[flag] = value
    args = [part for pair in argv.items() for part in pair]
    code, out, err = run(capsys, "broadcast", "start", *args)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("lifecycle: ") and error in lines[0], lines[0]
    assert out == ""


def test_a_broken_audience_file_is_named_with_its_field(cli_env, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nrule:\n  tier: {between: 3}\n")
    code, _, err = run(
        capsys, "broadcast", "start", "--audience", str(bad), "--template", "sale_preheat_sms",
        "--channel", "sms",
    )  # fmt: skip
    assert code == 1
    assert err.startswith(f"lifecycle: {bad}: rule.tier") and len(err.strip().splitlines()) == 1
