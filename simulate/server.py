"""The Temporal time-skipping test server as the simulation drives it.

Skipping to the next tick is one call that returns when the server's clock gets there, so it
lasts as long as that hour's work (under 2 s of wall time at 600 users). The call has its own
deadline (``ADVANCE_TIMEOUT``) rather than the client's default, and a run that cannot go on
fails with :class:`SimulationError`, which names the simulated hour and the step.

Between skips the server's clock runs at real pace, and a run's timers are due a few
milliseconds after a tick (the instant of the task that started them). The test server
strands a run whose workflow task cancels a timer that fired while the task was with the
worker (a user's order ending a wait): it refuses the completion ("invalid history builder
state for action", temporalio/sdk-java#2606, #3088), never times the task out or sends it
again, and its time lock is never released, so the clock stops for good. So before the calls
of a tick are posted, every timer of the users' open runs that is due within
``TIMER_GUARD`` is fired by a short skip, while no signal of theirs is in flight.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

# Wall time one skip to the next tick may take: that hour's work, with a wide margin for a busy
# machine. A stopped clock did not start again within 300 s, so a longer wait buys nothing.
ADVANCE_TIMEOUT = timedelta(minutes=2)
# Before a tick's calls are posted, the timers of the users' open runs due within this much
# server time (real time between skips: longer than posting one tick's calls takes) are fired
# by a skip past them; and how many such skips one posting may take.
TIMER_GUARD = timedelta(seconds=60)
MAX_GUARD_SKIPS = 10


class SimulationError(Exception):
    """The simulation could not go on; the message names the simulated time and the step."""


def quiet_runtime() -> Runtime:
    """A Temporal runtime that logs only errors (the test server lacks some capabilities the
    SDK warns about, which would drown the output)."""
    return Runtime(
        telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter("ERROR", "ERROR")))
    )


async def skip(
    env: WorkflowEnvironment,
    gap: timedelta,
    *,
    timeout: timedelta,
    step: str,
    open_runs: Callable[[], int],
) -> None:
    """Skip the server's clock ``gap`` ahead, running every timer due before it.

    One call, held until the clock gets there, with its own deadline and an error that
    names the hour (the client's default says only ``RPCError: Timeout expired``): ``step``
    says where the simulation is, ``open_runs`` how many runs are open.
    """
    request = SleepRequest()
    request.duration.FromTimedelta(gap)
    try:
        await env.client.test_service.unlock_time_skipping_with_sleep(request, timeout=timeout)
    except RPCError as exc:
        if exc.status not in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
            raise
        seconds = timeout.total_seconds()
        raise SimulationError(
            f"{step}: the Temporal test server did not get there within {seconds:g} s"
            f" of wall time ({open_runs()} runs open)"
        ) from exc


async def fire_timers_due_soon(
    env: WorkflowEnvironment,
    workflow_ids: list[str],
    advance_to: Callable[[datetime], Awaitable[None]],
) -> None:
    """Skip past every timer of these runs due within ``TIMER_GUARD`` of the server's
    clock (with ``advance_to``), so that it fires during the skip rather than while a signal
    to the run is being handled (a task that cancels a timer fired meanwhile strands the run
    and stops the clock; see the module's notes)."""
    for _ in range(MAX_GUARD_SKIPS):
        now = await env.get_current_time()
        due = [
            at
            for wid in workflow_ids
            for at in await pending_timers(env, wid)
            if at <= now + TIMER_GUARD
        ]
        if not due:
            return
        # A millisecond past the last: the skip waits for the tasks the timers start.
        await advance_to(max(max(due), now) + timedelta(milliseconds=1))


async def pending_timers(env: WorkflowEnvironment, workflow_id: str) -> list[datetime]:
    """When the started, not yet fired or cancelled timers of the run's current run
    are due."""
    handle = env.client.get_workflow_handle(workflow_id)
    pending: dict[str, datetime] = {}
    try:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                attrs = event.timer_started_event_attributes
                started = event.event_time.ToDatetime().replace(tzinfo=UTC)
                pending[attrs.timer_id] = started + attrs.start_to_fire_timeout.ToTimedelta()
            elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
                pending.pop(event.timer_fired_event_attributes.timer_id, None)
            elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
                pending.pop(event.timer_canceled_event_attributes.timer_id, None)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return []
    return list(pending.values())
