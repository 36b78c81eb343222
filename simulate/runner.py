"""Running journeys over a synthetic population on the Temporal time-skipping server.

Everything is the production code but the clock and the providers: calls go in through the
ingestion API (in process), the real router starts and signals ``JourneyWorkflow`` runs, the
real worker applies the delivery policy (consent, quiet hours, frequency caps, holdouts) and
sends through the outbox into a temporary SQLite file. Schedule-triggered journeys enter
their audience's members at each cron time, as the scheduler's sweeps do.

Time moves an hour at a time. At each tick the users whose moment it is act (visit, add to a
cart, order, use a coupon), the events the engine emitted itself (``coupon_issued``) are
routed, and then the server skips to the next tick, running every timer that falls in
between. The server holds its clock while activities run, so everything a timer started
before a tick has finished when the tick is reached. Users enter during ``days`` days; the
run then goes on (visits and orders only) until every run has ended.

The time-skipping server's ways (a skip's deadline, the timers fired before a tick's calls)
are in :mod:`simulate.server`; what happens at a tick in :mod:`simulate.ticks`.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

import compose
from api.app import create_app
from audiences.audience import Audience
from config import Settings, package_binary
from enrollment.router import JourneyRouter
from journeys.models import Journey
from simulate import server
from simulate.behaviour import Behaviour
from simulate.population import DayPlan, Person, identify, make_population
from simulate.results import SimulationResult, collect
from simulate.server import ADVANCE_TIMEOUT, SimulationError, quiet_runtime
from simulate.ticks import (
    HOUR,
    Clock,
    calls_of,
    open_runs,
    open_workflow_ids,
    plans_of_day,
    saved_schedule_audiences,
    signups,
    sweep,
    sweeps_of,
)
from store.db import SessionFactory, transaction
from store.journeys import publish
from store.migrate import upgrade
from triggers.temporal_client import data_converter
from worker import running_worker

__all__ = [
    "ADVANCE_TIMEOUT",
    "Clock",
    "Progress",
    "SimulationError",
    "quiet_runtime",
    "run_simulation",
    "simulation_settings",
]

# After the simulated period, runs still open get this long to end (goal windows, expiries).
MAX_DRAIN = timedelta(days=60)
BATCH = 200  # calls per /v1/batch request (well under its 500 KB limit)

# Called after each simulated day: (day, days, phase, open runs); phase is "entering"
# while users enter, then "finishing" while open runs end.
Progress = Callable[[int, int, str, int], None]


def simulation_settings(settings: Settings, database_url: str) -> Settings:
    """``settings`` with a private database and every channel on the outbox; the delivery
    policy (quiet hours, caps, timezone defaults) stays as configured."""
    return settings.model_copy(
        update={
            "database_url": database_url,
            "sms_provider": "outbox",
            "email_provider": "outbox",
            "push_provider": "outbox",
        }
    )


async def run_simulation(
    settings: Settings,
    journeys: list[tuple[Journey, str]],
    *,
    users: int,
    days: int,
    seed: int,
    behaviour: Behaviour,
    database: Path | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Simulate ``journeys`` (each with its YAML source) for ``users`` synthetic users over
    ``days`` days; the result holds the funnel, the send-hour histogram and a sample timeline.

    ``database`` keeps the SQLite file at that path (replacing one present) for a look
    afterwards (``lifecycle users timeline``), once the simulation has finished; by default
    it lives in a temporary folder.

    Raises:
        SimulationError: when the simulation cannot go on; the message names the simulated
            time and the step (skipping time, posting calls, routing, a sweep).
    """
    saved = saved_schedule_audiences(settings, [j for j, _ in journeys])
    with _database_file(database) as path:
        private = simulation_settings(settings, f"sqlite:///{path}")
        engine = compose.engine(private)
        try:
            upgrade(engine)
            factory = compose.session_factory(private, on=engine)
            env = await WorkflowEnvironment.start_time_skipping(
                data_converter=data_converter(settings),
                test_server_existing_path=str(package_binary("temporal-test-server")),
                runtime=quiet_runtime(),
            )
            try:
                sim = _Simulation(
                    private,
                    env,
                    factory,
                    journeys,
                    users=users,
                    days=days,
                    seed=seed,
                    behaviour=behaviour,
                    progress=progress,
                    saved=saved,
                )
                return await sim.run()
            finally:
                await env.shutdown()
        finally:
            engine.dispose()


@contextmanager
def _database_file(keep: Path | None) -> Iterator[Path]:
    """A path for the simulation's SQLite file. With ``keep``, the file is built beside it
    and moved there only when the simulation has finished: a failed run leaves the previous
    file as it was and no half-written one."""
    with tempfile.TemporaryDirectory(
        prefix="lifecycle-simulate-", dir=None if keep is None else _parent(keep)
    ) as folder:
        path = Path(folder) / "simulation.db"
        yield path
        if keep is not None:
            for suffix in ("-wal", "-shm"):  # a leftover beside an older file is not ours
                Path(f"{keep}{suffix}").unlink(missing_ok=True)
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{path}{suffix}").exists():
                    os.replace(f"{path}{suffix}", f"{keep}{suffix}")


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent


class _Simulation:
    def __init__(
        self,
        settings: Settings,
        env: WorkflowEnvironment,
        factory: SessionFactory,
        journeys: list[tuple[Journey, str]],
        *,
        users: int,
        days: int,
        seed: int,
        behaviour: Behaviour,
        progress: Progress | None,
        saved: dict[str, Audience] | None = None,
    ):
        self.settings, self.env, self.factory = settings, env, factory
        self.saved = saved or {}  # the saved audiences schedules name, by journey id
        self.journeys, self.users, self.days, self.seed = journeys, users, days, seed
        self.behaviour, self.progress = behaviour, progress
        self.task_queue = f"simulate-{uuid.uuid4().hex[:8]}"
        self.events_posted: dict[str, int] = {}
        # Where the simulation is, for an error that says so: set as each step begins.
        self.t0: datetime | None = None
        self.step = "starting the simulation"
        # Read when built, so that a test can make it short.
        self.advance_timeout = ADVANCE_TIMEOUT

    async def run(self) -> SimulationResult:
        began = time.monotonic()
        now = await self.env.get_current_time()
        # Day 0 starts at the next UTC midnight: the same story whenever it runs.
        t0 = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        await self._advance_to(t0)
        self.t0 = t0
        clock = Clock(t0)
        with transaction(self.factory) as session:
            for journey, source in self.journeys:
                publish(session, journey=journey, source=source, now=t0)
        router = JourneyRouter.from_settings(
            self.settings,
            factory=self.factory,
            client=self.env.client,
            task_queue=self.task_queue,
            clock=clock,
        )
        app = create_app(self.settings, session_factory=self.factory, router=router, clock=clock)
        people = make_population(self.seed, self.users, self.behaviour, start=t0, days=self.days)
        transport = httpx.ASGITransport(app=app)
        async with (
            running_worker(
                self.env.client, self.settings, self.factory, task_queue=self.task_queue
            ),
            httpx.AsyncClient(transport=transport, base_url="http://lifecycle") as http,
        ):
            try:
                # Existing users as the platform knows them, last seen days or weeks ago.
                self._at(clock.at, "entering", "posting the existing users")
                await self._post(
                    http, [identify(p, p.last_seen) for p in people if p.last_seen is not None]
                )
                await self._hours(http, router, people, clock)
            except SimulationError:
                raise
            except Exception as exc:
                raise SimulationError(f"{self.step}: {type(exc).__name__}: {exc}") from exc
        self.step = "counting the results"
        return collect(
            self.factory,
            [j for j, _ in self.journeys],
            settings=self.settings,
            users=self.users,
            days=self.days,
            seed=self.seed,
            start=t0,
            events=dict(sorted(self.events_posted.items())),
            seconds=time.monotonic() - began,
        )

    async def _hours(
        self, http: httpx.AsyncClient, router: JourneyRouter, people: list[Person], clock: Clock
    ) -> None:
        """Hour by hour from ``clock.at``: sweeps, signups and the users' moments, until the
        simulated period is over and every run has ended."""
        t0 = tick = clock.at
        end = t0 + timedelta(days=self.days)
        sweeps = sweeps_of([j for j, _ in self.journeys], t0, self.saved)
        plans: dict[datetime, list[DayPlan]] = {}
        while True:
            entering = tick < end
            phase = "entering" if entering else "finishing"
            await self._advance_to(tick, phase)
            clock.at = tick
            if tick.hour == 0:
                plans = plans_of_day(self.seed, people, (tick - t0).days, tick)
            if entering:
                self._at(tick, phase, "entering schedule-triggered journeys' audiences")
                sweeps = [await sweep(self.factory, router, s, tick) for s in sweeps]
                self._at(tick, phase, "posting the signups")
                await self._post_after_timers(http, signups(people, tick), phase)
            self._at(tick, phase, "posting the users' calls")
            calls = calls_of(self.factory, self.behaviour, plans.pop(tick, []), tick, entering)
            await self._post_after_timers(http, calls, phase)
            self._at(tick, phase, "routing the events the engine emitted")
            await router.route_pending(older_than=timedelta(0))
            tick += HOUR
            if tick.hour == 0 or not entering:
                running = open_runs(self.factory)
                if tick.hour == 0 and self.progress is not None:
                    self.progress((tick - t0).days, self.days, phase, running)
                if not entering and (running == 0 or tick >= end + MAX_DRAIN):
                    return

    def _at(self, tick: datetime, phase: str, doing: str) -> None:
        """Note the step that begins, for an error that names it."""
        self.step = f"{self._when(tick)} ({phase}): {doing}"

    def _when(self, at: datetime) -> str:
        if self.t0 is None:
            return f"{at:%Y-%m-%d %H:%M} UTC"
        return f"simulated day {(at - self.t0).days}, {at:%H:%M} UTC"

    async def _advance_to(self, at: datetime, phase: str = "starting") -> None:
        """Skip the server's clock to ``at``, running every timer due before it; a skip that
        does not get there in ``advance_timeout`` of wall time fails naming the hour."""
        now = await self.env.get_current_time()
        gap = at - now
        if gap <= timedelta(0):
            return
        self.step = f"{self._when(now)} ({phase}): skipping time to {at:%H:%M} UTC"
        await server.skip(
            self.env,
            gap,
            timeout=self.advance_timeout,
            step=self.step,
            open_runs=lambda: open_runs(self.factory),
        )

    async def _post_after_timers(
        self, http: httpx.AsyncClient, calls: list[dict[str, Any]], phase: str
    ) -> None:
        """Post ``calls`` once no open run of their users has a timer about to fire."""
        users = sorted({str(c["userId"]) for c in calls if c.get("userId")})
        step = self.step
        await self.fire_timers_due_soon(open_workflow_ids(self.factory, users), phase)
        self.step = step
        await self._post(http, calls)

    async def fire_timers_due_soon(self, workflow_ids: list[str], phase: str = "") -> None:
        """Skip past every timer of these runs due within ``TIMER_GUARD`` of the server's clock
        (see :mod:`simulate.server`), so that none fires while a signal to the run is handled."""

        async def advance_to(at: datetime) -> None:
            await self._advance_to(at, phase)

        await server.fire_timers_due_soon(self.env, workflow_ids, advance_to)

    async def _post(self, http: httpx.AsyncClient, calls: list[dict[str, Any]]) -> None:
        for call in calls:
            name = call.get("event") or call["type"]
            self.events_posted[name] = self.events_posted.get(name, 0) + 1
        for start in range(0, len(calls), BATCH):
            resp = await http.post(
                "/v1/batch",
                json={"batch": calls[start : start + BATCH]},
                auth=(self.settings.write_key, ""),
            )
            if resp.status_code != 200:
                raise RuntimeError(f"the ingestion API refused a batch: {resp.text[:200]}")
