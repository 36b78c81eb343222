"""``lifecycle sweeps run --wait`` and ``sweeps list`` against a real dev server and worker."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sweep_support import add_population, publish_winback, sweep_worker

from cli import main


async def test_sweeps_run_waits_and_list_shows_the_counts(
    dev_env, db, task_queue, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    t0 = await dev_env.get_current_time()
    journey = f"winback_{task_queue[3:]}"
    publish_winback(db.factory, t0 - timedelta(days=2), journey_id=journey)
    add_population(db.factory, t0, dormant=30, active=5)
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("LIFECYCLE_TASK_QUEUE", task_queue)
    at = (t0 - timedelta(hours=1)).isoformat()
    async with sweep_worker(dev_env, db, task_queue):
        code = await asyncio.to_thread(main, ["sweeps", "run", journey, "--at", at, "--wait"])
        assert code == 0
        again = await asyncio.to_thread(main, ["sweeps", "run", journey, "--at", at])
    out = capsys.readouterr().out
    assert code == again == 0
    assert "started (tick " in out and "30 members, 30 entered" in out
    assert out.count("already started") == 1

    assert main(["sweeps", "list", "--journey", journey]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2
    assert listed[1].split()[1:] == ["30", "30", "finished"]
