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
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
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

# Called after each simulated day: (day, days, phase, open runs); phase is "entering"
# while users enter, then "finishing" while open runs end.
Progress = Callable[[int, int, str, int], None]


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

    ``database`` keeps the SQLite file at that path (replaced if present) for a look
    afterwards (``lifecycle users timeline``); by default it lives in a temporary folder.
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
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{keep}{suffix}").unlink(missing_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="lifecycle-simulate-") as folder:
        yield Path(folder) / "simulation.db"


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

    async def run(self) -> SimulationResult:
        began = time.monotonic()
        now = await self.env.get_current_time()
        # Day 0 starts at the next UTC midnight: the same story whenever it runs.
        t0 = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        await self._advance_to(t0)
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
            # Existing users as the platform knows them, last seen days or weeks ago.
            await self._post(
                http, [identify(p, p.last_seen) for p in people if p.last_seen is not None]
            )
            await self._hours(http, router, people, clock)
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
            await self._advance_to(tick)
            clock.at = tick
            entering = tick < end
            if tick.hour == 0:
                plans = self._plan(people, (tick - t0).days, tick)
            if entering:
                sweeps = [await self._sweep(router, s, tick) for s in sweeps]
                await self._post(http, self._signups(people, tick))
            await self._post(http, self._act(plans.pop(tick, []), tick, entering))
            await router.route_pending(older_than=timedelta(0))
            tick += HOUR
            if tick.hour == 0 or not entering:
                running = self._open_runs()
                if tick.hour == 0 and self.progress is not None:
                    phase = "entering" if entering else "finishing"
                    self.progress((tick - t0).days, self.days, phase, running)
                if not entering and (running == 0 or tick >= end + MAX_DRAIN):
                    return

    async def _advance_to(self, at: datetime) -> None:
        gap = at - await self.env.get_current_time()
        if gap > timedelta(0):
            await self.env.sleep(gap)

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
