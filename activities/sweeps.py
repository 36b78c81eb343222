"""The sweep's page activity: one page of an audience entered into a journey.

Async (the router's enrollment work runs in threads, its workflow starts on the event loop)
and heartbeating: the heartbeat carries the cursor inside the page, so a retried attempt
after a worker crash carries on from the last user it entered. Entering is idempotent (the
trigger's ``message_id`` is the sweep's id), so the overlap of a crashed attempt enters no
one twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from audiences.rules import AudienceError
from journeys.schedule import schedule_audience
from store.db import SessionFactory, transaction
from store.journeys import latest_version, spec_of
from store.sweeps import count_entered, record_progress
from triggers.router import JourneyRouter
from workflows.contracts import EventSignal
from workflows.sweep import SWEEP_PAGE, SweepPageInput, SweepPageResult

log = logging.getLogger(__name__)

SWEEP_EVENT = "audience_sweep"  # the trigger event a swept run sees (templates: trigger.event)
CHUNK = 200  # users per enrollment transaction and heartbeat


class SweepActivities:
    def __init__(
        self,
        factory: SessionFactory,
        router: JourneyRouter,
        *,
        clock: Callable[[], datetime] | None = None,
        concurrency: int = 64,
    ):
        self._factory = factory
        self._router = router
        self._clock = clock or (lambda: datetime.now(UTC))
        self._concurrency = concurrency

    @activity.defn(name=SWEEP_PAGE)
    async def sweep_page(self, inp: SweepPageInput) -> SweepPageResult:
        """Enter one page of the journey's audience (as of the tick) after ``inp.cursor``."""
        cursor, members, entered = inp.cursor, 0, 0
        details = activity.info().heartbeat_details
        if details:  # a retried attempt: carry on after the last chunk entered
            cursor, members, entered = details[0], int(details[1]), int(details[2])
        wanted = inp.limit - members
        page = await asyncio.to_thread(self._page, inp, cursor, wanted)
        if page is None:
            log.info("sweep %s stops: %s is not published", inp.sweep_id, inp.journey_id)
            await asyncio.to_thread(self._record, inp, cursor, members, entered, done=True)
            return SweepPageResult(cursor, members, entered, True, "journey_not_published")
        signal = EventSignal(message_id=inp.sweep_id, event=SWEEP_EVENT, timestamp=inp.tick)
        for start in range(0, len(page), CHUNK):
            chunk = page[start : start + CHUNK]
            try:
                await self._router.enter_many(
                    inp.journey_id, chunk, trigger=signal, concurrency=self._concurrency
                )
            except LookupError:  # paused or archived meanwhile: stop, keep what was entered
                await asyncio.to_thread(self._record, inp, cursor, members, entered, done=True)
                return SweepPageResult(cursor, members, entered, True, "journey_not_published")
            # Counted from the rows, not from this attempt's starts: exact across retries.
            entered += await asyncio.to_thread(self._entered, inp, cursor, chunk[-1])
            cursor, members = chunk[-1], members + len(chunk)
            activity.heartbeat(cursor, members, entered)
        done = len(page) < wanted
        await asyncio.to_thread(self._record, inp, cursor, members, entered, done=done)
        return SweepPageResult(cursor, members, entered, done)

    def _page(self, inp: SweepPageInput, cursor: str | None, limit: int) -> list[str] | None:
        """The next member ids, or None if the journey is not published (or has no schedule)."""
        with transaction(self._factory) as session:
            row = latest_version(session, journey_id=inp.journey_id)
            if row is None or row.status != "published":
                return None
            schedule = spec_of(row).trigger.schedule
            if schedule is None:
                return None
            try:
                audience = schedule_audience(schedule)
            except AudienceError as exc:  # validation refuses these at publish: do not retry
                raise ApplicationError(
                    str(exc), type="BadAudienceRule", non_retryable=True
                ) from exc
            if limit <= 0:
                return []
            return audience.members(session, now=inp.tick, after=cursor, limit=limit)

    def _entered(self, inp: SweepPageInput, after: str | None, upto: str) -> int:
        """Enrollments this sweep created for users in (after, upto]."""
        with transaction(self._factory) as session:
            return count_entered(
                session, journey_id=inp.journey_id, sweep_id=inp.sweep_id, after=after, upto=upto
            )

    def _record(
        self,
        inp: SweepPageInput,
        cursor: str | None,
        members: int,
        entered: int,
        *,
        done: bool,
    ) -> None:
        with transaction(self._factory) as session:
            record_progress(
                session,
                workflow_id=inp.sweep_id,
                cursor=cursor,
                members=inp.members_before + members,
                entered=inp.entered_before + entered,
                finished_at=self._clock() if done else None,
            )
