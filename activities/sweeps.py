"""The sweep's page activity: one page of an audience entered into a journey.

Async (the router's enrollment work runs in threads, its workflow starts on the event loop)
and heartbeating, so an attempt lost with its worker is retried within the heartbeat
timeout. Entering is idempotent (the trigger's ``message_id`` is the sweep's id), so the
page a crashed attempt was working on is entered again without entering anyone twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from audiences.rules import AudienceError
from audiences.swept import SweptAudience, swept_audience
from enrollment.router import JourneyRouter
from journeys.models import Schedule
from journeys.schedule import UnknownAudience
from store.clock import utc_now
from store.db import SessionFactory, transaction
from store.journeys import latest_version, spec_of
from store.sweeps import count_entered, record_failure, record_progress
from workflows.journey_contracts import EventSignal
from workflows.sweep_contracts import SWEEP_PAGE, SweepPageInput, SweepPageResult

log = logging.getLogger(__name__)

SWEEP_EVENT = "audience_sweep"  # the trigger event a swept run sees (templates: trigger.event)


async def _heartbeat_every(seconds: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(seconds)


def _swept(session: Session, inp: SweepPageInput, schedule: Schedule) -> SweptAudience:
    """The audience this sweep pages through: the saved version its first page found, else
    the name's audience now. A name nobody has any more (a saved audience deleted since
    publishing) or a rule that cannot be used fails this tick for good, naming the journey:
    retrying would find the same, and the other journeys' sweeps are their own runs."""
    try:
        return swept_audience(session, schedule, version=inp.audience_version)
    except UnknownAudience as exc:
        pinned = inp.audience_version
        pinned_text = f" (version {pinned} was swept first)" if pinned else ""
        raise ApplicationError(
            f"journey {inp.journey_id}: {exc}{pinned_text}; the sweep of this tick stops",
            type="UnknownAudience",
            non_retryable=True,
        ) from exc
    except AudienceError as exc:  # validation refuses these at publish: do not retry
        raise ApplicationError(
            f"journey {inp.journey_id}: {exc}", type="BadAudienceRule", non_retryable=True
        ) from exc


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
        self._clock = clock or utc_now
        self._concurrency = concurrency

    @activity.defn(name=SWEEP_PAGE)
    async def sweep_page(self, inp: SweepPageInput) -> SweepPageResult:
        """Enter one page of the journey's audience (as of the tick) after ``inp.cursor``.

        The page's enrollment rows are written in one transaction, then its runs start side
        by side while a heartbeat keeps the attempt alive. A retried attempt (its worker
        died) does the page again: rows that exist are found, not written twice, and runs
        that exist are not started twice.
        """
        try:
            found = await asyncio.to_thread(self._page, inp)
        except ApplicationError as exc:
            if exc.non_retryable:  # the tick stops for good: its row says why
                await asyncio.to_thread(self._fail, inp, str(exc))
            raise
        if found is None:
            log.info("sweep %s stops: %s is not published", inp.sweep_id, inp.journey_id)
            await asyncio.to_thread(self._record, inp, inp.cursor, 0, 0, done=True)
            return SweepPageResult(inp.cursor, 0, 0, True, "journey_not_published")
        page, version = found
        if not page:
            await asyncio.to_thread(self._record, inp, inp.cursor, 0, 0, done=True, version=version)
            return SweepPageResult(inp.cursor, 0, 0, True, audience_version=version)
        signal = EventSignal(message_id=inp.sweep_id, event=SWEEP_EVENT, timestamp=inp.tick)
        beating = asyncio.create_task(_heartbeat_every(1.0))
        try:
            await self._router.enter_many(
                inp.journey_id, page, trigger=signal, concurrency=self._concurrency
            )
        except LookupError:  # paused or archived meanwhile: stop where the last page ended
            await asyncio.to_thread(self._record, inp, inp.cursor, 0, 0, done=True)
            return SweepPageResult(inp.cursor, 0, 0, True, "journey_not_published", version)
        finally:
            beating.cancel()
        # Counted from the rows, not from this attempt's starts: exact across retries.
        entered = await asyncio.to_thread(self._entered, inp, inp.cursor, page[-1])
        done = len(page) < inp.limit
        await asyncio.to_thread(
            self._record, inp, page[-1], len(page), entered, done=done, version=version
        )
        return SweepPageResult(page[-1], len(page), entered, done, audience_version=version)

    def _page(self, inp: SweepPageInput) -> tuple[list[str], int | None] | None:
        """The next member ids and the saved audience version they are from (None when the
        audience is shipped or inline); None if the journey is not published (or has no
        schedule)."""
        with transaction(self._factory) as session:
            row = latest_version(session, journey_id=inp.journey_id)
            if row is None or row.status != "published":
                return None
            schedule = spec_of(row).trigger.schedule
            if schedule is None:
                return None
            swept = _swept(session, inp, schedule)
            if inp.cursor is None:
                log.info("sweep %s: audience %s", inp.sweep_id, swept.label)
            members = swept.audience.members(
                session, now=inp.tick, after=inp.cursor, limit=inp.limit
            )
            return members, swept.version

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
        version: int | None = None,
    ) -> None:
        with transaction(self._factory) as session:
            record_progress(
                session,
                workflow_id=inp.sweep_id,
                cursor=cursor,
                members=inp.members_before + members,
                entered=inp.entered_before + entered,
                finished_at=self._clock() if done else None,
                audience_version=version,
            )

    def _fail(self, inp: SweepPageInput, error: str) -> None:
        with transaction(self._factory) as session:
            record_failure(session, workflow_id=inp.sweep_id, error=error, now=self._clock())
