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

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from audiences.audience import Audience
from config import Settings, package_binary
from enrollment.router import JourneyRouter
from journeys.models import Journey
from journeys.schedule import cron_trigger, next_tick, schedule_audience, tick_label
from simulate.behaviour import Behaviour
from simulate.population import (
    DayPlan,
    HeldCoupon,
    Person,
    act,
    identify,
    make_population,
    plan_day,
    track,
)
from simulate.results import SimulationResult, collect
from store.db import SessionFactory, make_engine, make_session_factory, transaction
from store.journeys import publish
from store.migrate import upgrade
from store.models import Coupon, Enrollment, Message
from store.reports import SENT
from triggers.api import create_app
from triggers.temporal_client import data_converter
from worker import running_worker
from workflows.contracts import EventSignal

HOUR = timedelta(hours=1)
# After the simulated period, runs still open get this long to end (goal windows, expiries).
MAX_DRAIN = timedelta(days=60)
BATCH = 200  # calls per /v1/batch request (well under its 500 KB limit)
# Wall time one skip to the next tick may take: that hour's work, with a wide margin for a busy
# machine. A stopped clock did not start again within 300 s, so a longer wait buys nothing.
ADVANCE_TIMEOUT = timedelta(minutes=2)
# Before a tick's calls are posted, the timers of the users' open runs due within this much
# server time (real time between skips: longer than posting one tick's calls takes) are fired
# by a skip past them; and how many such skips one posting may take.
TIMER_GUARD = timedelta(seconds=60)
MAX_GUARD_SKIPS = 10

# Called after each simulated day: (day, days, phase, open runs); phase is "entering"
# while users enter, then "finishing" while open runs end.
Progress = Callable[[int, int, str, int], None]


class SimulationError(Exception):
    """The simulation could not go on; the message names the simulated time and the step."""


def quiet_runtime() -> Runtime:
    """A Temporal runtime that logs only errors (the test server lacks some capabilities the
    SDK warns about, which would drown the output)."""
    return Runtime(
        telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter("ERROR", "ERROR")))
    )


@dataclass
class Clock:
    """The simulated now, for the API's ``received_at`` and the router's trigger ages."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at


@dataclass(frozen=True)
class Sweep:
    """A schedule-triggered journey: its cron, its audience and when it fires next."""

    journey: Journey
    trigger: Any  # an APScheduler CronTrigger
    audience: Audience
    next_fire: datetime | None


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
    with _database_file(database) as path:
        engine = make_engine(f"sqlite:///{path}")
        try:
            upgrade(engine)
            factory = make_session_factory(engine)
            env = await WorkflowEnvironment.start_time_skipping(
                data_converter=data_converter(settings),
                test_server_existing_path=str(package_binary("temporal-test-server")),
                runtime=quiet_runtime(),
            )
            try:
                sim = _Simulation(
                    simulation_settings(settings, f"sqlite:///{path}"),
                    env,
                    factory,
                    journeys,
                    users=users,
                    days=days,
                    seed=seed,
                    behaviour=behaviour,
                    progress=progress,
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
    ):
        self.settings, self.env, self.factory = settings, env, factory
        self.journeys, self.users, self.days, self.seed = journeys, users, days, seed
        self.behaviour, self.progress = behaviour, progress
        self.task_queue = f"simulate-{uuid.uuid4().hex[:8]}"
        self.events_posted: dict[str, int] = {}
        # Where the simulation is, for an error that says so: set as each step begins.
        self.t0: datetime | None = None
        self.step = "starting the simulation"

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
        router = JourneyRouter(
            factory=self.factory,
            client=self.env.client,
            task_queue=self.task_queue,
            max_trigger_age=self.settings.max_trigger_age,
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
        sweeps = [
            Sweep(
                j,
                trig := cron_trigger(j.trigger.schedule),
                schedule_audience(j.trigger.schedule),
                next_tick(trig, t0 - HOUR),
            )
            for j, _ in self.journeys
            if j.trigger.schedule is not None
        ]
        plans: dict[datetime, list[DayPlan]] = {}
        while True:
            entering = tick < end
            phase = "entering" if entering else "finishing"
            await self._advance_to(tick, phase)
            clock.at = tick
            if tick.hour == 0:
                plans = self._plan(people, (tick - t0).days, tick)
            if entering:
                self._at(tick, phase, "entering schedule-triggered journeys' audiences")
                sweeps = [await self._sweep(router, s, tick) for s in sweeps]
                self._at(tick, phase, "posting the signups")
                await self._post_after_timers(http, self._signups(people, tick), phase)
            self._at(tick, phase, "posting the users' calls")
            await self._post_after_timers(
                http, self._act(plans.pop(tick, []), tick, entering), phase
            )
            self._at(tick, phase, "routing the events the engine emitted")
            await router.route_pending(older_than=timedelta(0))
            tick += HOUR
            if tick.hour == 0 or not entering:
                running = self._open_runs()
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
        """Skip the server's clock to ``at``, running every timer due before it.

        One call, held until the clock gets there, with its own deadline and an error that
        names the hour (the client's default says only ``RPCError: Timeout expired``).
        """
        now = await self.env.get_current_time()
        gap = at - now
        if gap <= timedelta(0):
            return
        self.step = f"{self._when(now)} ({phase}): skipping time to {at:%H:%M} UTC"
        request = SleepRequest()
        request.duration.FromTimedelta(gap)
        try:
            await self.env.client.test_service.unlock_time_skipping_with_sleep(
                request, timeout=ADVANCE_TIMEOUT
            )
        except RPCError as exc:
            if exc.status not in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
                raise
            seconds = ADVANCE_TIMEOUT.total_seconds()
            raise SimulationError(
                f"{self.step}: the Temporal test server did not get there within {seconds:g} s"
                f" of wall time ({self._open_runs()} runs open)"
            ) from exc

    async def _post_after_timers(
        self, http: httpx.AsyncClient, calls: list[dict[str, Any]], phase: str
    ) -> None:
        """Post ``calls`` once no open run of their users has a timer about to fire."""
        users = sorted({str(c["userId"]) for c in calls if c.get("userId")})
        step = self.step
        await self.fire_timers_due_soon(self._open_workflow_ids(users), phase)
        self.step = step
        await self._post(http, calls)

    async def fire_timers_due_soon(self, workflow_ids: list[str], phase: str = "") -> None:
        """Skip past every timer of these runs due within ``TIMER_GUARD`` of the server's
        clock, so that it fires during the skip rather than while a signal to the run is
        being handled (a task that cancels a timer fired meanwhile strands the run and stops
        the clock; see the module's notes)."""
        for _ in range(MAX_GUARD_SKIPS):
            now = await self.env.get_current_time()
            due = [
                at
                for wid in workflow_ids
                for at in await self._pending_timers(wid)
                if at <= now + TIMER_GUARD
            ]
            if not due:
                return
            # A millisecond past the last: the skip waits for the tasks the timers start.
            await self._advance_to(max(max(due), now) + timedelta(milliseconds=1), phase)

    async def _pending_timers(self, workflow_id: str) -> list[datetime]:
        """When the started, not yet fired or cancelled timers of the run's current run
        are due."""
        handle = self.env.client.get_workflow_handle(workflow_id)
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

    def _open_workflow_ids(self, user_ids: list[str]) -> list[str]:
        if not user_ids:
            return []
        ids: list[str] = []
        with self.factory() as session:
            for start in range(0, len(user_ids), 500):  # under SQLite's parameter limit
                ids += session.scalars(
                    select(Enrollment.workflow_id).where(
                        Enrollment.user_id.in_(user_ids[start : start + 500]),
                        Enrollment.exited_at.is_(None),
                    )
                )
        return ids

    def _plan(self, people: list[Person], day: int, start: datetime) -> dict[datetime, list[Any]]:
        plans: dict[datetime, list[DayPlan]] = {}
        for person in people:
            if person.signed_up_by(start):
                plan = plan_day(self.seed, person, day, start)
                plans.setdefault(plan.at, []).append(plan)
        return plans

    def _signups(self, people: list[Person], tick: datetime) -> list[dict[str, Any]]:
        calls = []
        for p in people:
            if p.signup_at == tick:
                calls.append(identify(p, tick))
                calls.append(track(p, "user_signed_up", tick, 0, channel="app", method="phone"))
        return calls

    def _act(self, plans: list[DayPlan], tick: datetime, entering: bool) -> list[dict[str, Any]]:
        if not plans:
            return []
        ids = [p.person.user_id for p in plans]
        lifted, coupons = self._lift_and_coupons(ids, tick)
        calls = []
        for plan in plans:
            uid = plan.person.user_id
            calls += act(
                plan,
                self.behaviour,
                lifted=uid in lifted,
                journey_coupons=coupons.get(uid, []),
                entering=entering,
            )
        return calls

    def _lift_and_coupons(
        self, user_ids: list[str], tick: datetime
    ) -> tuple[set[str], dict[str, list[HeldCoupon]]]:
        """Who a message reached within the lift window before ``tick``; and the unused,
        unexpired coupons journeys gave each user."""
        window = timedelta(days=self.behaviour.lift.days)
        with self.factory() as session:
            lifted = set(
                session.scalars(
                    select(Message.user_id).where(
                        Message.user_id.in_(user_ids),
                        Message.status.in_(SENT),
                        Message.sent_at >= tick - window,
                        Message.sent_at < tick,
                    )
                )
            )
            coupons: dict[str, list[HeldCoupon]] = {}
            for row in session.scalars(
                select(Coupon)
                .where(
                    Coupon.user_id.in_(user_ids),
                    Coupon.redeemed_at.is_(None),
                    Coupon.expires_at > tick,
                )
                .order_by(Coupon.expires_at, Coupon.id)
            ):
                coupons.setdefault(row.user_id, []).append(
                    (row.code, row.amount_fen, row.min_spend_fen, row.expires_at)
                )
        return {u for u in lifted if u}, coupons

    async def _sweep(self, router: JourneyRouter, sweep: Sweep, tick: datetime) -> Sweep:
        """Enter the audience's members at every cron time up to ``tick``, a page at a time,
        as the scheduler's sweep would; the sweep with its next fire time."""
        fire, journey = sweep.next_fire, sweep.journey
        while fire is not None and fire <= tick:
            signal = EventSignal(
                message_id=f"sweep:{journey.id}:{tick_label(fire)}",
                event="audience_sweep",
                timestamp=fire,
            )
            after: str | None = None
            while True:
                with self.factory() as session:
                    page = sweep.audience.members(session, now=fire, after=after)
                if not page:
                    break
                await router.enter_many(journey.id, page, trigger=signal)
                after = page[-1]
            fire = next_tick(sweep.trigger, fire)
        return Sweep(journey, sweep.trigger, sweep.audience, fire)

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

    def _open_runs(self) -> int:
        with self.factory() as session:
            stmt = (
                select(func.count()).select_from(Enrollment).where(Enrollment.exited_at.is_(None))
            )
            return session.scalar(stmt) or 0
