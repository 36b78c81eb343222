"""A run says where it is (the position query) and a person can end it (the eject signal),
with fake activities on the time-skipping server."""

from __future__ import annotations

from datetime import timedelta

from test_journey_fake_activities import FakeActivities, journey_workers, start

from journeys.validate import parse_journey
from support import assert_eventually_async
from workflows.journey import JourneyWorkflow
from workflows.journey_contracts import EjectSignal, RunPosition

JOURNEY = parse_journey(
    """\
id: eject_test
name: Eject test
trigger: {event: user_signed_up}
goal: {event: order_placed, within: 7d}
steps:
  - id: hello
    type: send
    channel: sms
    template: new_user_welcome_sms
  - id: nap
    type: wait
    duration: 2d
""",
    file="<test>",
)


async def test_a_run_waiting_for_its_goal_is_ejected_as_ejected(time_env, task_queue):
    fakes = FakeActivities()
    async with journey_workers(time_env, fakes, task_queue):
        t0, handle = await start(time_env, JOURNEY, task_queue)

        async def napping() -> RunPosition:
            position = await handle.query(JourneyWorkflow.position)
            assert (position.step, position.waiting) == ("nap", "timer"), position
            return position

        position = await assert_eventually_async(napping, timeout=20)
        assert position.until is not None
        assert abs(position.until - (t0 + timedelta(days=2))) < timedelta(minutes=1)

        await time_env.sleep(timedelta(days=3))  # past the nap: only the goal window is left

        async def in_the_goal_window() -> RunPosition:
            position = await handle.query(JourneyWorkflow.position)
            assert (position.step, position.waiting) == ("", "goal"), position
            return position

        position = await assert_eventually_async(in_the_goal_window, timeout=20)
        assert position.until is not None
        assert abs(position.until - (t0 + timedelta(days=7))) < timedelta(minutes=1)

        await handle.signal(JourneyWorkflow.eject, EjectSignal(actor="ops", reason="test"))
        result = await handle.result()

    assert (result.exit_reason, result.converted, result.steps) == (
        "ejected",
        False,
        ["hello", "nap"],
    )
    ((finish),) = fakes.finished
    assert finish.reason == "ejected"
    assert finish.now - t0 < timedelta(days=6)  # at once, not when the goal window closed
    assert [path for path, _, _ in fakes.sent] == ["hello/1"]
