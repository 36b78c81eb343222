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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from audiences.audience import audience_from_data
from audiences.rules import AudienceError
from journeys.conditions import matches
from journeys.models import Journey
from journeys.used_properties import UsedProperties, used_properties
from observability.metrics import metrics
from store.db import SessionFactory, transaction
from store.journeys import live_versions, spec_of
from store.models import Coupon, Enrollment, Event, JourneyVersion, User
from store.rejected import Rejection, add_rejections
from store.upsert import insert_ignore_many
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow
from workflows.journey_contracts import JOURNEY_HISTORY_LIMIT, EventSignal, JourneyInput

log = logging.getLogger(__name__)

# The run's event signal, by the name ``start_workflow`` takes for a signal sent with the start.
SIGNAL = "event"
# The run's workflow id (imported from here by the tests and the benches).
workflow_id = journey_workflow_id


def holdout_group(journey_id: str, user_id: str, percent: float) -> str:
    """Deterministic holdout assignment: the same (journey, user) always lands the same."""
    digest = hashlib.sha256(f"{journey_id}\x00{user_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 10_000
    return "holdout" if bucket < round(percent * 100) else "treatment"


@dataclass(frozen=True)
class _Entry:
    user_id: str
    enrollment_id: int
    workflow_id: str
    group: str
    key: str = ""
    number: int = 1


# Failures that say nothing about the event: the parts around it did not answer. They count
# no attempt, so an outage never parks good events.
_TRANSIENT_RPC = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.CANCELLED,
}


def is_transient(exc: BaseException) -> bool:
    """Whether a routing failure is the infrastructure's (retry as is), not the event's."""
    if isinstance(exc, RPCError):
        return exc.status in _TRANSIENT_RPC
    return isinstance(
        exc, OperationalError | InterfaceError | DisconnectionError | TimeoutError | OSError
    )


class RoutingIncomplete(Exception):
    """Some events could not be routed because Temporal or the database did not answer;
    they stay unrouted and are routed on a retry."""

    def __init__(self, event_ids: list[int]) -> None:
        super().__init__(f"events {event_ids} not routed: Temporal or the database is unreachable")
        self.event_ids = event_ids


def _raw_event(event: Event) -> str:
    """A stored event as ASCII JSON, for the dead-letter table (whatever it holds)."""
    fields = {
        "messageId": event.message_id,
        "type": event.type,
        "userId": event.user_id,
        "event": event.event,
        "timestamp": event.timestamp.isoformat(),
        "properties": event.properties,
        "context": event.context,
    }
    try:
        return json.dumps(fields, ensure_ascii=True, default=str)
    except (ValueError, RecursionError) as exc:
        fields.pop("properties"), fields.pop("context")
        return json.dumps({**fields, "unprintable": str(exc)}, ensure_ascii=True, default=str)


# Events the router acts on whatever the journeys say: a coupon of ours was used.
REDEEMING_EVENTS = ("coupon_redeemed", "order_placed")


class ActedOnEvents:
    """The names of the events any journey version acts on: what a published version can
    start (its trigger) and what running enrollments of any version listen for (goal, exits,
    waits, restarts), plus the coupon redemptions. Any other event is only stored.

    Calling it re-reads the versions at most every ``ttl`` seconds (a journey published a
    moment ago acts on its events after that); :meth:`read` always reads them. Versions
    never change, so each is parsed once.
    """

    def __init__(self, factory: SessionFactory, *, ttl: float = 5.0) -> None:
        self._factory = factory
        self._ttl = ttl
        self._by_version: dict[tuple[str, int], frozenset[str]] = {}
        self._names: frozenset[str] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> frozenset[str]:
        with self._lock:
            if self._names is None or time.monotonic() - self._read_at > self._ttl:
                with transaction(self._factory) as session:
                    self._names = self.read(session)
                self._read_at = time.monotonic()
            return self._names

    def read(self, session: Session) -> frozenset[str]:
        """The names, as the versions stand in ``session``."""
        versions = [
            tuple(v)
            for v in session.execute(select(JourneyVersion.journey_id, JourneyVersion.version))
        ]
        missing = {
            journey_id
            for journey_id, version in versions
            if (journey_id, version) not in self._by_version
        }
        if missing:
            for row in session.scalars(
                select(JourneyVersion).where(JourneyVersion.journey_id.in_(missing))
            ):
                journey = spec_of(row)
                found = set(journey.listens_for())
                if journey.trigger.event is not None:
                    found.add(journey.trigger.event)
                self._by_version[(row.journey_id, row.version)] = frozenset(found)
        names = set(REDEEMING_EVENTS)
        for key in versions:
            names |= self._by_version.get(key, frozenset())  # type: ignore[arg-type]
        return frozenset(names)


def _signal_of(event: Event) -> EventSignal:
    assert event.event is not None
    return EventSignal(
        message_id=event.message_id,
        event=event.event,
        timestamp=event.timestamp,
        properties=dict(event.properties or {}),
    )


def _open_runs_stmt() -> Select[str, str, str | None, str, str, int]:
    """Open enrollments, with what decides whether an event reaches each (narrow it with a
    ``where`` on the user)."""
    return select(
        Enrollment.user_id,
        Enrollment.workflow_id,
        Enrollment.trigger_message_id,
        Enrollment.entry_key,
        Enrollment.journey_id,
        Enrollment.journey_version,
    ).where(Enrollment.exited_at.is_(None))


def _redeem(session: Session, user_id: str, code: str, at: datetime) -> None:
    """A coupon we issued was used: reports count it redeemed."""
    session.execute(
        update(Coupon)
        .where(Coupon.user_id == user_id, Coupon.code == code, Coupon.redeemed_at.is_(None))
        .values(redeemed_at=at)
    )


def _may_reenter(journey: Journey, exited_at: datetime, now: datetime) -> bool:
    policy = journey.re_entry
    if policy == "never":
        return False
    if policy == "always":
        return True
    return now >= exited_at + policy.after


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
    ):
        self._factory = factory
        self._max_attempts = max_attempts
        self._history_limit = history_limit
        self._concurrency = concurrency
        # Published versions never change: parsed specs (and the events each acts on) are
        # cached by (journey, version).
        self._specs: dict[tuple[str, int], Journey] = {}
        self._acted_on = ActedOnEvents(factory)
        # And so are the properties their runs get (Temporal history keeps what it is sent).
        self._uses: dict[tuple[str, int], UsedProperties] = {}
        self._client = client
        self._task_queue = task_queue
        self._max_trigger_age = max_trigger_age
        self._clock = clock or (lambda: datetime.now(UTC))

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
        events, journeys, acted_on = await asyncio.to_thread(self._load, event_ids)
        # Most events (page views, product views) start and advance nothing: they are only
        # marked routed, together, with no query or Temporal call of their own.
        busy: list[Event] = []
        done: list[int] = []
        for event in events:
            if self._may_act(event, acted_on):
                busy.append(event)
            else:
                done.append(event.id)
        # One user's events keep their order; different users are routed side by side.
        by_user: dict[str | None, list[Event]] = {}
        for event in busy:
            by_user.setdefault(event.user_id, []).append(event)
        limit = asyncio.Semaphore(self._concurrency)
        failed: list[tuple[Event, Exception]] = []

        async def route_user(user_events: list[Event]) -> None:
            async with limit:
                for event in user_events:
                    try:
                        await self._route_one(event, journeys)
                        done.append(event.id)
                    except Exception as exc:  # one event never stops the others
                        failed.append((event, exc))

        # A user with one event in the batch (most of a stream) needs nothing of the others':
        # those events are read and written together, a few statements for all of them.
        alone = [evs[0] for evs in by_user.values() if len(evs) == 1]
        try:
            if alone:
                retry = await self._route_together(alone, journeys, limit, done, failed)
                by_user = {e.user_id: [e] for e in retry} | {
                    u: evs for u, evs in by_user.items() if len(evs) > 1
                }
            async with asyncio.TaskGroup() as group:
                for user_events in by_user.values():
                    group.create_task(route_user(user_events))
        finally:
            if done:
                await asyncio.to_thread(self._mark_routed, done)
        await self._count_failures(failed)

    @staticmethod
    def _may_act(event: Event, acted_on: frozenset[str]) -> bool:
        """Whether routing ``event`` could start, signal or redeem anything."""
        return (
            event.type == "track"
            and bool(event.user_id)
            and event.event is not None
            and event.event in acted_on
        )

    async def _count_failures(self, failed: list[tuple[Event, Exception]]) -> None:
        transient = [event.id for event, exc in failed if is_transient(exc)]
        own = [(event, exc) for event, exc in failed if not is_transient(exc)]
        for event, exc in own:
            log.warning(
                "routing event %s (%s) failed: %s: %s",
                event.id,
                event.message_id,
                type(exc).__name__,
                str(exc)[:300],
            )
        if own:
            await asyncio.to_thread(self._count_attempts, own)
        if transient:
            raise RoutingIncomplete(sorted(transient)) from failed[0][1]

    def _count_attempts(self, failed: list[tuple[Event, Exception]]) -> None:
        """One more failed attempt for each event; those at the limit are parked."""
        errors = {event.id: exc for event, exc in failed}
        with transaction(self._factory) as session:
            session.execute(
                update(Event)
                .where(Event.id.in_(list(errors)))
                .values(route_attempts=Event.route_attempts + 1)
            )
            parked = [
                Rejection(
                    stage="route",
                    source="router",
                    reason=f"{type(errors[row.id]).__name__}: {str(errors[row.id])[:2000]}",
                    raw=_raw_event(row),
                    message_id=row.message_id,
                    event_id=row.id,
                    attempts=row.route_attempts,
                )
                for row in session.scalars(
                    select(Event).where(
                        Event.id.in_(list(errors)),
                        Event.route_attempts == self._max_attempts,  # parked once
                        Event.routed_at.is_(None),
                    )
                )
            ]
            add_rejections(session, rows=parked, at=self._clock())
        for row in parked:
            log.error(
                "event %s (%s) parked after %d failed routing attempts; "
                "see `lifecycle events rejected`",
                row.event_id,
                row.message_id,
                row.attempts,
            )
        metrics().events_rejected("route", len(parked))

    def _load(
        self, event_ids: list[int]
    ) -> tuple[list[Event], list[tuple[int, Journey]], frozenset[str]]:
        """The events, the published journeys, and the names of the events any journey
        version (published or not: older versions still have running enrollments) acts on."""
        with transaction(self._factory) as session:
            events: list[Event] = []
            if event_ids:
                stmt = select(Event).where(Event.id.in_(event_ids)).order_by(Event.id)
                events = list(session.scalars(stmt))
            # Statuses only: a version's spec is parsed once and cached (versions never change).
            journeys = [
                (version, self._spec(session, journey_id, version))
                for journey_id, version, status in live_versions(session)
                if status == "published"
            ]
            acted_on = self._acted_on.read(session)
        return events, journeys, acted_on

    def _redeem(self, user_id: str, code: str, at: datetime) -> None:
        with transaction(self._factory) as session:
            _redeem(session, user_id, code, at)

    def _mark_routed(self, event_ids: list[int]) -> None:
        at = self._clock()
        with transaction(self._factory) as session:
            for start in range(0, len(event_ids), 500):
                session.execute(
                    update(Event)
                    .where(Event.id.in_(event_ids[start : start + 500]), Event.routed_at.is_(None))
                    .values(routed_at=at)
                )

    async def _route_one(self, event: Event, journeys: list[tuple[int, Journey]]) -> None:
        if event.type != "track" or not event.user_id or not event.event:
            return
        signal = _signal_of(event)
        code = signal.properties.get("coupon_code")
        if event.event in REDEEMING_EVENTS and isinstance(code, str):
            await asyncio.to_thread(self._redeem, event.user_id, code, event.timestamp)
        await self._signal_open_runs(event.user_id, signal)
        for version, journey, key in self._triggered(event, signal, journeys):
            await self._enter(journey, version, event.user_id, signal, key)

    def _triggered(
        self, event: Event, signal: EventSignal, journeys: list[tuple[int, Journey]]
    ) -> list[tuple[int, Journey, str]]:
        """The journeys ``event`` may enter its user into, with the entry key of each."""
        too_old = self._clock() - event.timestamp > self._max_trigger_age
        found: list[tuple[int, Journey, str]] = []
        for version, journey in journeys:
            trigger = journey.trigger
            if trigger.event != event.event or not matches(trigger.where, signal.properties):
                continue
            if too_old:
                log.info("event %s too old to enter %s", event.message_id, journey.id)
                continue
            key = ""
            if trigger.key:
                value = signal.properties.get(trigger.key)
                if value is None or isinstance(value, dict | list) or value == "":
                    log.warning(
                        "event %s lacks key %s for %s", event.message_id, trigger.key, journey.id
                    )
                    continue
                key = str(value)
            found.append((version, journey, key))
        return found

    async def _route_together(
        self,
        events: list[Event],
        journeys: list[tuple[int, Journey]],
        limit: asyncio.Semaphore,
        done: list[int],
        failed: list[tuple[Event, Exception]],
    ) -> list[Event]:
        """Route events of different users as :meth:`_route_one` would, with the database
        work done for all of them at once: one transaction redeems coupons and reads the open
        runs, one per (journey, key) writes the entries; then each event's signals and starts
        go to Temporal side by side. Returns the events to route again one by one: all of
        them if a shared step failed (so that only a poisoned event counts an attempt)."""
        signals = {e.id: _signal_of(e) for e in events}
        try:
            targets = await asyncio.to_thread(self._prepare_together, events, signals)
            entries: dict[int, list[tuple[Journey, int, _Entry]]] = {e.id: [] for e in events}
            wanted: dict[tuple[str, int, str], tuple[Journey, list[Event]]] = {}
            for event in events:
                for version, journey, key in self._triggered(event, signals[event.id], journeys):
                    wanted.setdefault((journey.id, version, key), (journey, []))[1].append(event)
            for (_, version, key), (journey, entering) in wanted.items():
                by_user = {e.user_id: e for e in entering if e.user_id}
                made = await asyncio.to_thread(
                    self._enroll_many,
                    journey,
                    version,
                    list(by_user),
                    {u: signals[e.id] for u, e in by_user.items()},
                    key,
                )
                for entry in made:
                    entries[by_user[entry.user_id].id].append((journey, version, entry))
        except Exception:
            log.debug("routing %d events together failed; routing them one by one", len(events))
            return events

        async def act(event: Event) -> None:
            assert event.user_id is not None
            signal = signals[event.id]
            async with limit:
                try:
                    await self._signal(targets.get(event.id, []), signal)
                    for journey, version, entry in entries[event.id]:
                        await self._start(journey, version, event.user_id, entry, signal)
                    done.append(event.id)
                except Exception as exc:  # one event never stops the others
                    failed.append((event, exc))

        async with asyncio.TaskGroup() as group:
            for event in events:
                group.create_task(act(event))
        return []

    def _prepare_together(
        self, events: list[Event], signals: dict[int, EventSignal]
    ) -> dict[int, list[tuple[str, UsedProperties]]]:
        """Redeem the coupons the events name and find the open runs each event reaches, in
        one transaction; the runs by event id."""
        with transaction(self._factory) as session:
            for event in events:
                code = signals[event.id].properties.get("coupon_code")
                if event.event in REDEEMING_EVENTS and isinstance(code, str):
                    _redeem(session, event.user_id or "", code, event.timestamp)
            users = sorted({e.user_id for e in events if e.user_id})
            rows: dict[str, list[Any]] = {}
            for start in range(0, len(users), 500):
                chunk = users[start : start + 500]
                for row in session.execute(_open_runs_stmt().where(Enrollment.user_id.in_(chunk))):
                    rows.setdefault(row.user_id, []).append(row)
            return {
                e.id: self._reached(session, rows.get(e.user_id or "", []), signals[e.id])
                for e in events
            }

    async def _enter(
        self, journey: Journey, version: int, user_id: str, signal: EventSignal, key: str = ""
    ) -> bool:
        entry = await asyncio.to_thread(self._enroll, journey, version, user_id, signal, key)
        if entry is None:
            return False
        await self._start(journey, version, user_id, entry, signal)
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
        _, journeys, _ = await asyncio.to_thread(self._load, [])
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

        async def start(entry: _Entry) -> None:
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
        for wid in workflow_ids:
            try:
                await self._client.get_workflow_handle(wid).terminate(reason=reason)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise

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
                        Event.route_attempts < self._max_attempts,  # parked ones wait
                    )
                    .order_by(Event.id)
                    .limit(limit)
                )
                return list(session.scalars(stmt))

        ids = await asyncio.to_thread(pending)
        await self.route(ids)
        return len(ids)

    def _enroll(
        self, journey: Journey, version: int, user_id: str, signal: EventSignal, key: str
    ) -> _Entry | None:
        """Write (or find) the enrollment row; None if this event may not (re-)enter."""
        entries = self._enroll_many(journey, version, [user_id], {user_id: signal}, key)
        return entries[0] if entries else None

    def _enroll_many(
        self,
        journey: Journey,
        version: int,
        user_ids: list[str],
        signals: EventSignal | Mapping[str, EventSignal],
        key: str = "",
        *,
        now: datetime | None = None,
    ) -> list[_Entry]:
        """Write (or find) the enrollment rows of many users in one transaction; the entries
        whose runs should be started, in ``user_ids`` order. ``signals`` is the trigger of
        all of them (a sweep's tick) or each user's own (a batch of events).

        For each user the newest enrollment of (journey, user, key) decides: an open one keeps
        its run (a repeated trigger reaches it as a signal); a closed one allows a new entry as
        ``re_entry`` says. Only the event that created a row may start its run, so a retried
        duplicate (or a retried sweep page) starts nothing new. Re-entry windows are judged
        at ``now`` (default: the clock).
        """
        now = now or self._clock()
        signal_of: Mapping[str, EventSignal] = (
            dict.fromkeys(user_ids, signals) if isinstance(signals, EventSignal) else signals
        )
        entries: dict[str, _Entry] = {}
        with transaction(self._factory) as session:
            latest: dict[str, Enrollment] = {}
            rows = session.scalars(
                select(Enrollment).where(
                    Enrollment.journey_id == journey.id,
                    Enrollment.user_id.in_(user_ids),
                    Enrollment.entry_key == key,
                )
            )
            for row in rows:
                seen = latest.get(row.user_id)
                if seen is None or row.entry_number > seen.entry_number:
                    latest[row.user_id] = row
            candidates: list[str] = []
            for user_id in dict.fromkeys(user_ids):
                last = latest.get(user_id)
                if last is not None:
                    if last.trigger_message_id == signal_of[user_id].message_id:
                        if last.exited_at is None:
                            entries[user_id] = _Entry(
                                user_id,
                                last.id,
                                last.workflow_id,
                                last.group,
                                key,
                                last.entry_number,
                            )
                        continue
                    if last.exited_at is None or not _may_reenter(journey, last.exited_at, now):
                        continue
                candidates.append(user_id)
            if journey.entry is not None and candidates:
                # Each user is judged at their event's time.
                at_time: dict[datetime, list[str]] = {}
                for user_id in candidates:
                    at_time.setdefault(signal_of[user_id].timestamp, []).append(user_id)
                allowed: set[str] = set()
                for at, users in at_time.items():
                    allowed |= self._in_entry_audience(session, journey, users, at)
                candidates = [u for u in candidates if u in allowed]
            wanted: dict[str, str] = {}
            new_rows: list[dict[str, Any]] = []
            for user_id in candidates:
                last = latest.get(user_id)
                number = last.entry_number + 1 if last is not None else 1
                wid = journey_workflow_id(journey.id, user_id, key, number)
                wanted[wid] = user_id
                new_rows.append(
                    {
                        "journey_id": journey.id,
                        "journey_version": version,
                        "user_id": user_id,
                        "entry_key": key,
                        "entry_number": number,
                        "group": holdout_group(journey.id, user_id, journey.holdout),
                        "workflow_id": wid,
                        "trigger_message_id": signal_of[user_id].message_id,
                        # business time: when it happened
                        "entered_at": signal_of[user_id].timestamp,
                    }
                )
            for start in range(0, len(new_rows), 500):  # within every database's parameter limit
                insert_ignore_many(session, Enrollment, rows=new_rows[start : start + 500])
            if wanted:
                created = session.scalars(
                    select(Enrollment).where(Enrollment.workflow_id.in_(list(wanted)))
                )
                for row in created:
                    # Not a concurrent entry:
                    if row.trigger_message_id == signal_of[row.user_id].message_id:
                        metrics().enrollment_started(journey.id, row.group)
                        entries[row.user_id] = _Entry(
                            row.user_id, row.id, row.workflow_id, row.group, key, row.entry_number
                        )
        return [entries[u] for u in dict.fromkeys(user_ids) if u in entries]

    def _in_entry_audience(
        self, session: Session, journey: Journey, user_ids: list[str], at: datetime
    ) -> set[str]:
        """The users among ``user_ids`` in the journey's entry audience at ``at``."""
        try:
            audience = audience_from_data(journey.entry, source=f"{journey.id}.entry")
        except AudienceError:
            log.exception("journey %s has an unusable entry rule", journey.id)
            return set()
        cond = audience.condition(session, at, correlated=True)
        return set(session.scalars(select(User.id).where(User.id.in_(user_ids), cond)))

    def _used(self, journey: Journey, version: int) -> UsedProperties:
        """The properties runs of this journey version get (read once: templates are files)."""
        uses = self._uses.get((journey.id, version))
        if uses is None:
            uses = self._uses[(journey.id, version)] = used_properties(journey)
        return uses

    async def _start(
        self, journey: Journey, version: int, user_id: str, entry: _Entry, signal: EventSignal
    ) -> None:
        uses = self._uses.get((journey.id, version))
        if uses is None:
            uses = await asyncio.to_thread(self._used, journey, version)
        # Only what the journey uses enters the run's history; the rest stays in the events
        # table, which erasure reaches.
        signal = replace(signal, properties=uses.of_trigger(signal.properties))
        inp = JourneyInput(
            journey=journey,
            journey_version=version,
            enrollment_id=entry.enrollment_id,
            user_id=user_id,
            group=entry.group,
            trigger=signal,
            entry_key=entry.key,
            entry_number=entry.number,
            history_limit=self._history_limit,
        )
        try:
            await self._client.start_workflow(
                JourneyWorkflow.run,
                inp,
                id=entry.workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                # A schedule-triggered run has its trigger in its input; an event-triggered one
                # also gets it as a signal, so a run already going (a restart) hears it.
                start_signal=SIGNAL if journey.trigger.event is not None else None,
                start_signal_args=[signal] if journey.trigger.event is not None else [],
            )
        except WorkflowAlreadyStartedError:
            pass  # the run closed already; the enrollment row says how

    async def _signal_open_runs(self, user_id: str, signal: EventSignal) -> None:
        targets = await asyncio.to_thread(self._open_runs_for, user_id, signal)
        await self._signal(targets, signal)

    async def _signal(self, targets: list[tuple[str, UsedProperties]], signal: EventSignal) -> None:
        for wid, uses in targets:
            # Each run hears only the properties its journey uses.
            heard = replace(signal, properties=uses.of_signal(signal.event, signal.properties))
            try:
                await self._client.get_workflow_handle(wid).signal(JourneyWorkflow.event, heard)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise  # transient: the API answers 503 and the client retries

    def _open_runs_for(self, user_id: str, signal: EventSignal) -> list[tuple[str, UsedProperties]]:
        with transaction(self._factory) as session:
            rows = session.execute(_open_runs_stmt().where(Enrollment.user_id == user_id)).all()
            return self._reached(session, rows, signal)

    def _reached(
        self, session: Session, rows: Sequence[Any], signal: EventSignal
    ) -> list[tuple[str, UsedProperties]]:
        """Of a user's open runs, the ones ``signal`` concerns, with what each may hear."""
        targets = []
        for _, wid, trigger_id, key, journey_id, version in rows:
            journey = self._spec(session, journey_id, version)
            if trigger_id == signal.message_id or not journey.concerns(signal.event):
                continue
            # A keyed run hears events of its own key, and key-less ones (account_deleted).
            name = journey.trigger.key
            if name and name in signal.properties and str(signal.properties[name]) != key:
                continue
            targets.append((wid, self._used(journey, version)))
        return targets

    def _spec(self, session: Session, journey_id: str, version: int) -> Journey:
        cached = self._specs.get((journey_id, version))
        if cached is None:
            row = session.scalars(
                select(JourneyVersion).where(
                    JourneyVersion.journey_id == journey_id, JourneyVersion.version == version
                )
            ).one()
            cached = self._specs[(journey_id, version)] = spec_of(row)
        return cached
