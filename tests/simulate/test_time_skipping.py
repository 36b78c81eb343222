"""The simulator's skips of the server's clock: one that lasts longer than the client's default
deadline (30 s) still finishes, and one that cannot finish fails in one line that names the
simulated hour, with nothing half-written left behind."""

from __future__ import annotations

import asyncio
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


@workflow.defn
class WaitsForTheGoal:
    """A journey's wait: a timer raced by a signal, then the next step (a timer here)."""

    def __init__(self) -> None:
        self.goal = False

    @workflow.signal
    def reached(self, handling: float) -> None:
        time.sleep(handling)  # a slow task: still with the worker when the timer comes due
        self.goal = True

    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.wait_condition(lambda: self.goal, timeout=timedelta(seconds=2))
        except TimeoutError:
            pass
        await workflow.sleep(timedelta(minutes=5))


async def test_a_timer_due_as_a_signal_comes_fires_first_and_the_clock_goes_on(
    tmp_path, monkeypatch
):
    # Unguarded, the signal's task cancels a timer that fired meanwhile, the test server
    # refuses it and the clock stops for good: the skip after it would fail.
    monkeypatch.setattr(simulate.runner, "ADVANCE_TIMEOUT", timedelta(seconds=10))
    engine = make_engine(f"sqlite:///{tmp_path / 'sim.db'}")
    upgrade(engine)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(package_binary("temporal-test-server"))
    )
    queue = f"goal-{uuid.uuid4().hex[:8]}"
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
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[WaitsForTheGoal],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            handle = await env.client.start_workflow(
                WaitsForTheGoal.run, id=f"goal-{queue}", task_queue=queue
            )
            await asyncio.sleep(1.0)  # the clock creeps at real pace: the timer is due in ~1 s
            await sim.fire_timers_due_soon([handle.id])
            await handle.signal(WaitsForTheGoal.reached, 1.5)
            await asyncio.sleep(2.5)
            await sim._advance_to(await env.get_current_time() + timedelta(hours=1))
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
