"""The event router: stored events in, journeys started or signalled.

For each stored event, in order:

- every published journey it triggers gets an **enrollment row** first (unique journey + user
  + key + entry number: the row, not Temporal, decides re-entry once a run has closed), then
  a signal-with-start (USE_EXISTING) of ``journey:{journey}:{user}``;
- every open enrollment of the user whose journey waits for the event (goal, exit) is signalled;
- the event is marked ``routed_at``.

Routing is idempotent: a stored event routed twice starts and signals nothing new, so the API
can route any event whose ``routed_at`` is still empty, including a retried duplicate.

No event stops the others: each is routed on its own. One that fails for a reason of its
own (not an unreachable Temporal or database) counts an attempt in ``route_attempts``; at
``max_attempts`` it is parked in the dead-letter table (``lifecycle events rejected``) and
the pending-event loop passes it by until it is replayed.

This module orchestrates; its parts are :mod:`enrollment.versions` (what it reads about
journeys), :mod:`enrollment.judging` (what an event concerns), :mod:`enrollment.entries`
(what it writes), :mod:`enrollment.batch` (a batch's database work at once),
:mod:`enrollment.runs` (Temporal) and :mod:`enrollment.parking` (failures).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from temporalio.client import Client

from config import Settings
from enrollment.batch import Batch, Prepared, plan_batch
from enrollment.entries import Entry, enroll_many, holdout_group, redeem
from enrollment.judging import (
    Target,
    may_act,
    open_runs_stmt,
    reached,
    signal_of,
    triggered,
)
from enrollment.parking import Parking, RoutingIncomplete, is_transient
from enrollment.runs import SIGNAL, JourneyRuns
from enrollment.versions import REDEEMING_EVENTS, ActedOnEvents, JourneySpecs
from journeys.models import Journey
from store.clock import utc_now
from store.db import SessionFactory, transaction
from store.models import Enrollment, Event
from workflows.journey_contracts import JOURNEY_HISTORY_LIMIT, EventSignal

log = logging.getLogger(__name__)

__all__ = [
    "REDEEMING_EVENTS",
    "SIGNAL",
    "ActedOnEvents",
    "JourneyRouter",
    "RoutingIncomplete",
    "holdout_group",
    "is_transient",
]


# Built once: every routed batch runs it.
_MARK_ROUTED = (
    update(Event)
    .where(Event.id.in_(bindparam("ids", expanding=True)), Event.routed_at.is_(None))
    .values(routed_at=bindparam("at"))
)


class JourneyRouter:
    """Starts and signals journey workflows for stored events."""

    def __init__(
        self,
        *,
        factory: SessionFactory,
        client: Client,
        task_queue: str,
        max_trigger_age: timedelta,
        clock: Callable[[], datetime] | None = None,
        concurrency: int = 16,
        history_limit: int = JOURNEY_HISTORY_LIMIT,
        max_attempts: int = 5,
        global_control_percent: float = 0,
        global_control_salt: str = "global-control",
    ):
        """``global_control_percent`` and ``global_control_salt`` are the settings'
        global control group (:mod:`store.program`; 0: none): the enrollments of its users
        record it (journey reports set them aside), and their runs are told so when they
        start, and withhold their coupons."""
        self._factory = factory
        self._concurrency = concurrency
        # Published versions never change: parsed specs, the properties their runs get and
        # the events each acts on are cached by (journey, version).
        self._specs = JourneySpecs()
        self._acted_on = ActedOnEvents()
        self._runs = JourneyRuns(
            client=client,
            task_queue=task_queue,
            history_limit=history_limit,
        )
        self._global_control_percent = global_control_percent
        self._global_control_salt = global_control_salt
        self._max_trigger_age = max_trigger_age
        self._clock = clock or utc_now
        self._parking = Parking(factory, max_attempts=max_attempts, clock=self._clock)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        factory: SessionFactory,
        client: Client,
        task_queue: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> JourneyRouter:
        """The router settings ask for: its task queue (unless given), how old a trigger
        may be, the routing attempts before an event is parked, the global control group."""
        return cls(
            factory=factory,
            client=client,
            task_queue=task_queue or settings.task_queue,
            max_trigger_age=settings.max_trigger_age,
            clock=clock,
            max_attempts=settings.max_route_attempts,
            global_control_percent=settings.global_control_percent,
            global_control_salt=settings.global_control_salt,
        )

    async def route(self, event_ids: list[int]) -> None:
        """Route the given stored events (in id order); mark each routed when done.

        Each event is routed on its own: one that fails leaves the others routed. A failure
        of the event's own counts an attempt (and parks it at the limit); then this returns
        normally, since retrying the request cannot help.

        Raises:
            RoutingIncomplete: when Temporal or the database did not answer for some
                events; a retry routes them.
        """
        if not event_ids:
            return
        plan = await asyncio.to_thread(self._prepare, event_ids)
        done = list(plan.quiet)
        by_user = plan.several
        limit = asyncio.Semaphore(self._concurrency)
        failed: list[tuple[Event, Exception]] = []

        async def route_user(user_events: list[Event]) -> None:
            async with limit:
                for event in user_events:
                    try:
                        await self._route_one(event, plan.journeys)
                        done.append(event.id)
                    except Exception as exc:  # one event never stops the others
                        failed.append((event, exc))

        try:
            if plan.batch is not None:
                await self._act_together(plan.alone, plan.batch, limit, done, failed)
            else:  # the shared step failed: each is routed on its own
                by_user = {e.user_id: [e] for e in plan.alone} | by_user
            async with asyncio.TaskGroup() as group:
                for user_events in by_user.values():
                    group.create_task(route_user(user_events))
        finally:
            if done:
                await asyncio.to_thread(self._mark_routed, done)
        if failed:
            transient = await asyncio.to_thread(self._parking.own_failures, failed)
            if transient:
                raise RoutingIncomplete(sorted(transient)) from failed[0][1]

    def _prepare(self, event_ids: list[int]) -> Prepared:
        """One transaction: the events and journeys (:meth:`_load`), which events concern
        no journey, and the database work of the events of users with one event in the
        batch (most of a stream), done for all of them at once
        (:func:`enrollment.batch.plan_batch`). If that shared step fails it is undone, and
        those events are routed one by one, so that only a poisoned event counts an
        attempt."""
        with transaction(self._factory) as session:
            events, journeys, acted_on = self._load(session, event_ids)
            # Most events (page views, product views) start and advance nothing: they are
            # only marked routed, together, with no query or Temporal call of their own.
            quiet: list[int] = []
            # One user's events keep their order; different users are routed side by side.
            by_user: dict[str | None, list[Event]] = {}
            for event in events:
                if may_act(event, acted_on):
                    by_user.setdefault(event.user_id, []).append(event)
                else:
                    quiet.append(event.id)
            alone = [evs[0] for evs in by_user.values() if len(evs) == 1]
            several = {u: evs for u, evs in by_user.items() if len(evs) > 1}
            batch = None
            if alone:
                try:
                    with session.begin_nested():
                        batch = plan_batch(
                            session,
                            self._specs,
                            alone,
                            triggered=lambda event, sig: self._triggered(event, sig, journeys),
                            enroll=self._enroll_many,
                        )
                except Exception:
                    log.debug("routing %d events together failed; one by one", len(alone))
        return Prepared(journeys, quiet, alone, several, batch)

    def _load(
        self, session: Session, event_ids: list[int]
    ) -> tuple[list[Event], list[tuple[int, Journey]], frozenset[str]]:
        """The events, the published journeys, and the names of the events any journey
        version (published or not: older versions still have running enrollments) acts on."""
        events: list[Event] = []
        if event_ids:
            stmt = select(Event).where(Event.id.in_(event_ids)).order_by(Event.id)
            events = list(session.scalars(stmt))
        journeys, newest = self._specs.published_and_newest(session)
        return events, journeys, self._acted_on.as_of(session, newest)

    def _redeem(self, user_id: str, code: str, at: datetime) -> None:
        with transaction(self._factory) as session:
            redeem(session, user_id, code, at)

    def _mark_routed(self, event_ids: list[int]) -> None:
        at = self._clock()
        with transaction(self._factory) as session:
            for start in range(0, len(event_ids), 500):
                session.connection().execute(  # Core: no loaded event to bring up to date
                    _MARK_ROUTED, {"ids": event_ids[start : start + 500], "at": at}
                )

    async def _route_one(self, event: Event, journeys: list[tuple[int, Journey]]) -> None:
        if event.type != "track" or not event.user_id or not event.event:
            return
        signal = signal_of(event)
        code = signal.properties.get("coupon_code")
        if event.event in REDEEMING_EVENTS and isinstance(code, str):
            await asyncio.to_thread(self._redeem, event.user_id, code, event.timestamp)
        targets = await asyncio.to_thread(self._open_runs_for, event.user_id, signal)
        await self._runs.signal(targets, signal)
        for version, journey, key in self._triggered(event, signal, journeys):
            await self._enter(journey, version, event.user_id, signal, key)

    def _triggered(
        self, event: Event, signal: EventSignal, journeys: list[tuple[int, Journey]]
    ) -> list[tuple[int, Journey, str]]:
        """The journeys ``event`` may enter its user into, with the entry key of each."""
        return triggered(
            event, signal, journeys, now=self._clock(), max_trigger_age=self._max_trigger_age
        )

    async def _act_together(
        self,
        events: list[Event],
        batch: Batch,
        limit: asyncio.Semaphore,
        done: list[int],
        failed: list[tuple[Event, Exception]],
    ) -> None:
        """What :meth:`_route_one` would do in Temporal for each of ``events``, whose
        database work ``batch`` holds: its signals and starts, side by side."""

        async def act(event: Event) -> None:
            assert event.user_id is not None
            signal = batch.signals[event.id]
            async with limit:
                try:
                    await self._runs.signal(batch.targets.get(event.id, []), signal)
                    for journey, version, entry in batch.entries[event.id]:
                        await self._start(journey, version, event.user_id, entry, signal)
                    done.append(event.id)
                except Exception as exc:  # one event never stops the others
                    failed.append((event, exc))

        async with asyncio.TaskGroup() as group:
            for event in events:
                group.create_task(act(event))

    async def _enter(
        self, journey: Journey, version: int, user_id: str, signal: EventSignal, key: str = ""
    ) -> bool:
        entries = await asyncio.to_thread(
            self._enroll_many, journey, version, [user_id], {user_id: signal}, key
        )
        if not entries:
            return False  # this event may not (re-)enter
        await self._start(journey, version, user_id, entries[0], signal)
        return True

    async def enter(self, journey_id: str, user_id: str, *, trigger: EventSignal) -> bool:
        """Enter ``user_id`` into the published ``journey_id`` without an event (sweeps,
        broadcasts, tests), under the same re-entry rules; True if a run was started."""
        return await self.enter_many(journey_id, [user_id], trigger=trigger) == 1

    async def enter_many(
        self, journey_id: str, user_ids: list[str], *, trigger: EventSignal, concurrency: int = 0
    ) -> int:
        """Enter many users at once (a page of a sweep): one transaction writes their
        enrollment rows, then their runs start side by side. Returns how many runs were
        started; a retry with the same ``trigger`` (same ``message_id``) re-starts only runs
        it created, which Temporal de-duplicates, and creates nothing new.

        Raises :class:`LookupError` if the journey is not published (unknown or paused).
        """
        journeys = await asyncio.to_thread(self._published)
        found = [(v, j) for v, j in journeys if j.id == journey_id]
        if not found:
            raise LookupError(f"no published journey {journey_id!r}")
        version, journey = found[0]
        # No event arrived: the trigger's own instant (a sweep's tick) is the business time.
        entries = await asyncio.to_thread(
            self._enroll_many, journey, version, user_ids, trigger, now=trigger.timestamp
        )
        limit = asyncio.Semaphore(concurrency or self._concurrency)
        failed: list[str] = []

        async def start(entry: Entry) -> None:
            async with limit:
                try:
                    await self._start(journey, version, entry.user_id, entry, trigger)
                except Exception as exc:
                    if is_transient(exc):
                        raise  # the page is retried whole; what started is not started twice
                    # One user's run never stops the page: a retry would fail the same way.
                    log.error(
                        "%s: could not start %s: %s: %s",
                        journey_id,
                        entry.workflow_id,
                        type(exc).__name__,
                        str(exc)[:300],
                    )
                    failed.append(entry.user_id)

        async with asyncio.TaskGroup() as group:
            for entry in entries:
                group.create_task(start(entry))
        return len(entries) - len(failed)

    async def end_runs(self, workflow_ids: list[str], *, reason: str) -> None:
        """Terminate running journeys (a forgotten user); ones already closed are fine."""
        await self._runs.end(workflow_ids, reason=reason)

    async def route_pending(
        self, *, older_than: timedelta = timedelta(seconds=30), limit: int = 500
    ) -> int:
        """Route stored events that nobody routed (an API whose routing failed and a client
        that never retried; events the engine emits itself, such as ``coupon_issued``).
        Returns how many were routed."""
        cutoff = self._clock() - older_than

        def pending() -> list[int]:
            with transaction(self._factory) as session:
                stmt = (
                    select(Event.id)
                    .where(
                        Event.routed_at.is_(None),
                        Event.received_at <= cutoff,
                        Event.route_attempts < self._parking.max_attempts,  # parked ones wait
                    )
                    .order_by(Event.id)
                    .limit(limit)
                )
                return list(session.scalars(stmt))

        ids = await asyncio.to_thread(pending)
        await self.route(ids)
        return len(ids)

    def _enroll_many(
        self,
        journey: Journey,
        version: int,
        user_ids: list[str],
        signals: EventSignal | Mapping[str, EventSignal],
        key: str = "",
        *,
        now: datetime | None = None,
        session: Session | None = None,
    ) -> list[Entry]:
        """Write (or find) the enrollment rows of many users, in ``session`` or a
        transaction of their own (:func:`enrollment.entries.enroll_many`); re-entry windows
        are judged at ``now`` (default: the clock)."""
        if session is None:
            with transaction(self._factory) as own:
                return self._enroll_many(
                    journey, version, user_ids, signals, key, now=now, session=own
                )
        return enroll_many(
            session,
            journey,
            version,
            user_ids,
            signals,
            key,
            now=now or self._clock(),
            global_control_percent=self._global_control_percent,
            global_control_salt=self._global_control_salt,
        )

    def _published(self) -> list[tuple[int, Journey]]:
        with transaction(self._factory) as session:
            return self._specs.published(session)

    async def _start(
        self, journey: Journey, version: int, user_id: str, entry: Entry, signal: EventSignal
    ) -> None:
        uses = self._specs.cached_used(journey, version)
        if uses is None:
            uses = await asyncio.to_thread(self._specs.used, journey, version)
        await self._runs.start(journey, version, user_id, entry, signal, uses)

    def _open_runs_for(self, user_id: str, signal: EventSignal) -> list[Target]:
        with transaction(self._factory) as session:
            rows = session.execute(open_runs_stmt().where(Enrollment.user_id == user_id)).all()
            return reached(session, self._specs, rows, signal)
