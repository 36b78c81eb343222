"""``lifecycle scheduler``: one APScheduler cron job per published schedule-triggered journey.

Each job, when it fires, works out the tick it fired for (:func:`journeys.schedule.last_tick`:
the latest scheduled instant at or before now, the same on every replica), claims the unique
``sweep_ticks`` row and starts ``SweepWorkflow`` as ``sweep:{journey}:{tick}`` with
REJECT_DUPLICATE. Any number of replicas may run: the row and the workflow id make exactly
one sweep per tick. Jobs live in memory only (nothing pickled into the database); every
``refresh_every`` seconds the scheduler re-reads the published journeys, so journeys
published, edited, paused or resumed later are picked up without a restart.

**Misfires.** A tick nobody started on time (every scheduler was down, or the journey was
paused then) is started late if it is at most ``misfire_grace`` old when a scheduler next
looks, and only the latest such tick: missed ticks are coalesced, never replayed as a
backlog. Older ticks are skipped, and logged once. A tick from before the journey's version
was published is never started: publishing a daily journey at 15:00 waits for tomorrow's
tick rather than sweeping at once for this morning's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from config import Settings
from journeys.schedule import ScheduleError, cron_trigger, last_tick, tick_label
from store.clock import utc_now
from store.db import SessionFactory, transaction
from store.journeys import live_journeys, spec_of
from store.sweeps import claim_tick, mark_started, tick_exists
from workflows.ids import sweep_workflow_id
from workflows.sweep import SweepInput, SweepWorkflow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Scheduled:
    cron: str
    timezone: str
    published_at: datetime
    trigger: CronTrigger


class SweepScheduler:
    """Cron jobs for the published journeys' schedules; starts one sweep per tick."""

    def __init__(
        self,
        *,
        factory: SessionFactory,
        client: Client,
        task_queue: str,
        misfire_grace: timedelta = timedelta(hours=6),
        refresh_every: float = 30.0,
        page_size: int = 1000,
        heartbeat: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] | None = None,
    ):
        self._factory = factory
        self._client = client
        self._task_queue = task_queue
        self._grace = misfire_grace
        self._refresh_every = refresh_every
        self._page_size = page_size
        self._heartbeat = heartbeat
        self._clock = clock or utc_now
        self._scheduled: dict[str, _Scheduled] = {}
        self._skipped: set[str] = set()
        self._apscheduler = AsyncIOScheduler(timezone=UTC)

    @property
    def journeys(self) -> dict[str, str]:
        """The journeys with a cron job now: id → cron line and timezone."""
        return {j: f"{s.cron} ({s.timezone})" for j, s in self._scheduled.items()}

    async def start(self) -> None:
        """Load the schedules, start the cron jobs and the refresh job."""
        await self.refresh()
        self._apscheduler.add_job(
            self.refresh,
            "interval",
            seconds=self._refresh_every,
            id="refresh",
            coalesce=True,
            max_instances=1,
        )
        self._apscheduler.start()
        log.info("scheduler ready: %d schedule(s) %s", len(self._scheduled), self.journeys)

    def shutdown(self) -> None:
        if self._apscheduler.running:
            self._apscheduler.shutdown(wait=False)

    async def refresh(self) -> None:
        """Bring the cron jobs in line with the published journeys, then catch up misfires."""
        try:
            wanted = await asyncio.to_thread(self._published_schedules)
        except Exception:
            log.exception("reading the published journeys failed; keeping the current jobs")
            return
        for journey_id in set(self._scheduled) - set(wanted):
            self._apscheduler.remove_job(f"sweep:{journey_id}")
            del self._scheduled[journey_id]
            log.info("schedule removed: %s", journey_id)
        for journey_id, scheduled in wanted.items():
            current = self._scheduled.get(journey_id)
            if current is not None and (current.cron, current.timezone) == (
                scheduled.cron,
                scheduled.timezone,
            ):
                self._scheduled[journey_id] = scheduled  # a newer version, same timing
                continue
            self._apscheduler.add_job(
                self.fire,
                scheduled.trigger,
                args=[journey_id],
                id=f"sweep:{journey_id}",
                replace_existing=True,
                coalesce=True,
                max_instances=3,
                misfire_grace_time=max(1, int(self._grace.total_seconds())),
            )
            self._scheduled[journey_id] = scheduled
            log.info("schedule set: %s %s (%s)", journey_id, scheduled.cron, scheduled.timezone)
        await self.catch_up()

    async def fire(self, journey_id: str) -> None:
        """A cron job fired: start the sweep of the tick it fired for."""
        scheduled = self._scheduled.get(journey_id)
        if scheduled is None:
            return
        tick = last_tick(scheduled.trigger, self._clock())
        if tick is None or tick < scheduled.published_at:
            return
        try:
            await self.start_sweep(journey_id, tick)
        except Exception:  # the next refresh catches the tick up, within the grace
            log.exception("starting sweep of %s at %s failed", journey_id, tick_label(tick))

    async def catch_up(self) -> None:
        """Start each journey's latest tick if nobody has and it is within the grace."""
        now = self._clock()
        for journey_id, scheduled in list(self._scheduled.items()):
            tick = last_tick(scheduled.trigger, now)
            if tick is None or tick < scheduled.published_at:
                continue
            if now - tick > self._grace:
                label = sweep_workflow_id(journey_id, tick)
                if label not in self._skipped and not await asyncio.to_thread(
                    self._tick_known, journey_id, tick
                ):
                    self._skipped.add(label)
                    log.warning(
                        "tick %s of %s was missed by more than %s: skipped",
                        tick_label(tick),
                        journey_id,
                        self._grace,
                    )
                continue
            try:
                await self.start_sweep(journey_id, tick)
            except Exception:
                log.exception("catching up sweep of %s at %s failed", journey_id, tick_label(tick))

    async def start_sweep(self, journey_id: str, tick: datetime) -> bool:
        """Claim the tick and start its sweep; False if some replica already did."""
        wid = sweep_workflow_id(journey_id, tick)
        started = await asyncio.to_thread(self._claim, journey_id, tick, wid)
        if started:
            return False
        try:
            await self._client.start_workflow(
                SweepWorkflow.run,
                SweepInput(
                    journey_id=journey_id,
                    tick=tick,
                    page_size=self._page_size,
                    heartbeat_seconds=self._heartbeat.total_seconds(),
                ),
                id=wid,
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
            log.info("sweep started: %s", wid)
            result = True
        except WorkflowAlreadyStartedError:
            result = False  # another replica won the race
        await asyncio.to_thread(self._mark_started, wid)
        return result

    def _claim(self, journey_id: str, tick: datetime, wid: str) -> bool:
        """Create or find the tick's row; True if its sweep is known to have started."""
        with transaction(self._factory) as session:
            row = claim_tick(
                session, journey_id=journey_id, tick=tick, workflow_id=wid, now=self._clock()
            )
            return row.started_at is not None

    def _mark_started(self, wid: str) -> None:
        with transaction(self._factory) as session:
            mark_started(session, workflow_id=wid, now=self._clock())

    def _tick_known(self, journey_id: str, tick: datetime) -> bool:
        with transaction(self._factory) as session:
            return tick_exists(session, workflow_id=sweep_workflow_id(journey_id, tick))

    def _published_schedules(self) -> dict[str, _Scheduled]:
        found: dict[str, _Scheduled] = {}
        with transaction(self._factory) as session:
            for row in live_journeys(session):
                if row.status != "published":
                    continue
                schedule = spec_of(row).trigger.schedule
                if schedule is None:
                    continue
                try:
                    trigger = cron_trigger(schedule)
                except ScheduleError as exc:  # publish validates; an old row may not have
                    log.error("journey %s has an unusable schedule: %s", row.journey_id, exc)
                    continue
                found[row.journey_id] = _Scheduled(
                    schedule.cron, schedule.timezone, row.published_at, trigger
                )
        return found


async def run_scheduler(settings: Settings, *, factory: SessionFactory, client: Client) -> None:
    """Start the cron jobs of the journeys in ``factory``'s database, starting their sweeps
    through ``client``, and run until cancelled."""
    scheduler = SweepScheduler(
        factory=factory,
        client=client,
        task_queue=settings.task_queue,
        misfire_grace=settings.sweep_misfire_grace,
        refresh_every=settings.scheduler_refresh_seconds,
        page_size=settings.sweep_page_size,
    )
    await scheduler.start()
    try:
        await asyncio.Event().wait()
    finally:
        scheduler.shutdown()
