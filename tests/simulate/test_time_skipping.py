"""The simulator's skips of the server's clock: one that lasts longer than the client's default
deadline (30 s) still finishes, and one that cannot finish fails in one line that names the
simulated hour, with nothing half-written left behind."""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import simulate.runner
from cli import main
from config import Settings, package_binary
from simulate.behaviour import parse_behaviour
from simulate.runner import _Simulation
from store.db import make_engine, make_session_factory
from store.migrate import upgrade

# Longer than the client's default deadline for a call (30 s), which is what failed the
# simulation whenever one hour's skip took that long.
HOLD_SECONDS = 35


@activity.defn
def hold(seconds: float) -> None:
    time.sleep(seconds)


@workflow.defn
class HoldsTheClock:
    @workflow.run
    async def run(self, seconds: float) -> None:
        await workflow.execute_activity(
            hold, seconds, start_to_close_timeout=timedelta(seconds=seconds + 30)
        )


async def test_a_skip_that_lasts_longer_than_the_default_deadline_finishes(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sim.db'}")
    upgrade(engine)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(package_binary("temporal-test-server"))
    )
    queue = f"hold-{uuid.uuid4().hex[:8]}"
    try:
        sim = _Simulation(
            Settings(environment="development"),
            env,
            make_session_factory(engine),
            [],
            users=1,
            days=1,
            seed=1,
            behaviour=parse_behaviour("{}"),
            progress=None,
        )
        with ThreadPoolExecutor(2) as pool:
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=[HoldsTheClock],
                activities=[hold],
                activity_executor=pool,
                workflow_runner=UnsandboxedWorkflowRunner(),
            ):
                handle = await env.client.start_workflow(
                    HoldsTheClock.run, HOLD_SECONDS, id=f"hold-{queue}", task_queue=queue
                )
                # The server holds its clock while the activity runs: the skip lasts as long.
                began = time.monotonic()
                target = await env.get_current_time() + timedelta(hours=1)
                await sim._advance_to(target)

                assert time.monotonic() - began >= HOLD_SECONDS - 1
                assert await env.get_current_time() >= target
                with env.auto_time_skipping_disabled():
                    await handle.result()
    finally:
        await env.shutdown()
        engine.dispose()


def test_a_run_that_cannot_go_on_names_the_hour_and_leaves_nothing_half_written(
    tmp_path, capsys, monkeypatch
):
    # A deadline nobody can meet stands for a server that does not get to the next hour.
    monkeypatch.setattr(simulate.runner, "ADVANCE_TIMEOUT", timedelta(milliseconds=1))
    keep = tmp_path / "kept" / "sim.db"
    keep.parent.mkdir()
    keep.write_bytes(b"the previous run's file")

    code = main(
        ["simulate", "journeys/new_user_coupon.yaml", "--users", "5", "--days", "1"]
        + ["--json", "--keep-db", str(keep)]
    )

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""  # no partial JSON
    (line,) = err.strip().splitlines()
    assert re.fullmatch(
        r"lifecycle: SimulationError: .*\(\w+\): skipping time to \d\d:00 UTC: the Temporal "
        r"test server did not get there within 0\.001 s of wall time \(\d+ runs open\)"
        r" \(run with --debug for details\)",
        line,
    ), line
    # The file a failed run would have replaced is as it was; nothing else is left beside it.
    assert keep.read_bytes() == b"the previous run's file"
    assert [p.name for p in keep.parent.iterdir()] == ["sim.db"]


@pytest.fixture(autouse=True)
def _quiet_hours_as_in_production(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_QUIET_HOURS", "21:00-08:00")
