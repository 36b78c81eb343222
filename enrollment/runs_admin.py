"""Who is where in a journey, and ending runs by hand.

``where``: the journey's open enrollments (from the database), each run's position asked of
its workflow (the ``position`` query, a bounded number at a time, each with a timeout),
grouped per step: how many wait there, until when, and who. Past ``sample`` open runs, a
random sample is asked and the counts are scaled to the whole.

``eject``: signals each chosen run (``eject``): it leaves as for an exit event and its
finishing activity records the enrollment exited as ``ejected``; who ejected it and why is
recorded here as a ``journey_ejected`` event of the user, the fact the timeline shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import func, select
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode

from journeys.models import walk
from journeys.validate import parse_journey, shipped_journey_files
from store.db import SessionFactory, transaction
from store.journey_runs import EjectedRun, record_ejections
from store.journeys import spec_of
from store.models import Enrollment, JourneyVersion
from workflows.journey import JourneyWorkflow
from workflows.journey_contracts import EjectSignal, RunPosition, Waiting

# Open runs asked at most by ``where``; past it, a random sample this size.
SAMPLE = 2000
# Queries and signals in flight at once, and how long one query may take.
CONCURRENCY = 32
QUERY_TIMEOUT = timedelta(seconds=5)
# Where a run is when it is at no step of the journey.
GOAL_WINDOW = "(goal window)"  # after the last step, the goal can still be reached
BETWEEN = "(between steps)"  # starting, or recording how it ended
NO_ANSWER = "(no answer)"  # its workflow did not answer (closed, or too busy)
PLACES = (GOAL_WINDOW, BETWEEN, NO_ANSWER)

T = TypeVar("T")


class UnknownJourney(LookupError):
    """No journey of that id is published or shipped."""


class UnknownStep(LookupError):
    """The journey has no step of that id."""


@dataclass(frozen=True)
class Run:
    """One open enrollment and where its run is."""

    enrollment_id: int
    user_id: str
    entry_key: str
    workflow_id: str
    position: RunPosition | None = None  # None: the run did not answer

    @property
    def step(self) -> str:
        p = self.position
        if p is None:
            return NO_ANSWER
        return p.step or (GOAL_WINDOW if p.waiting == Waiting.GOAL else BETWEEN)


@dataclass
class StepRuns:
    """The runs at one step: how many (``estimate``: scaled to every open run when sampled),
    until when the earliest and the latest of them wait, and who."""

    step: str
    runs: list[Run] = field(default_factory=list)
    estimate: int = 0

    @property
    def count(self) -> int:
        return len(self.runs)

    @property
    def untils(self) -> list[datetime]:
        return sorted(r.position.until for r in self.runs if r.position and r.position.until)

    @property
    def earliest(self) -> datetime | None:
        return self.untils[0] if self.untils else None

    @property
    def latest(self) -> datetime | None:
        return self.untils[-1] if self.untils else None


@dataclass
class Whereabouts:
    """Where a journey's open runs are, per step in the journey's order."""

    journey_id: str
    open: int  # open enrollments
    asked: int  # runs asked: all of them, or a sample
    steps: list[StepRuns]

    @property
    def sampled(self) -> bool:
        return self.asked < self.open

    def at(self, step: str) -> StepRuns:
        return next((s for s in self.steps if s.step == step), StepRuns(step))


@dataclass
class Ejection:
    """The runs ejected, the users named who had no open run in the journey, and the runs
    Temporal would not take the signal for (each with why; the others are ejected anyway)."""

    runs: list[Run]
    not_open: list[str] = field(default_factory=list)
    failed: list[tuple[Run, str]] = field(default_factory=list)


def journey_steps(factory: SessionFactory, journey_id: str) -> list[str]:
    """Every step id of the journey (any published version, or its shipped file), newest
    version first, in document order; :class:`UnknownJourney` if there is none."""
    with factory() as session:
        rows = session.scalars(
            select(JourneyVersion)
            .where(JourneyVersion.journey_id == journey_id)
            .order_by(JourneyVersion.version.desc())
        )
        specs = [spec_of(row) for row in rows]
    shipped = next((p for p in shipped_journey_files() if p.stem == journey_id), None)
    if shipped is not None:
        specs.append(parse_journey(shipped.read_text(encoding="utf-8"), file=str(shipped)))
    if not specs:
        raise UnknownJourney(f"no journey {journey_id!r} is published or shipped")
    return list(dict.fromkeys(step.id for spec in specs for step in walk(spec.steps)))


async def _bounded(items: Iterable[T], call: Callable[[T], Awaitable[object]]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: T) -> None:
        async with gate:
            await call(item)

    await asyncio.gather(*(one(item) for item in items))


class RunsAdmin:
    """Who is where in a journey, and ejecting runs, on one database and Temporal client."""

    def __init__(self, *, factory: SessionFactory, client: Client) -> None:
        self._factory = factory
        self._client = client

    async def where(self, journey_id: str, *, sample: int = SAMPLE) -> Whereabouts:
        """The journey's open runs per step (a random ``sample`` of them past that many)."""
        order = await asyncio.to_thread(journey_steps, self._factory, journey_id)
        total, runs = await asyncio.to_thread(self._open_runs, journey_id, None, sample)
        located = await self._locate(runs)
        steps = {s: StepRuns(s) for s in [*order, *PLACES]}
        for run in located:
            steps.setdefault(run.step, StepRuns(run.step)).runs.append(run)
        scale = total / len(runs) if runs else 0
        for s in steps.values():
            s.runs.sort(key=lambda r: (_until_key(r), r.user_id))
            s.estimate = round(s.count * scale)
        shown = [s for s in steps.values() if s.count or s.step in order]
        return Whereabouts(journey_id, total, len(runs), shown)

    async def eject(
        self,
        journey_id: str,
        *,
        actor: str,
        reason: str,
        now: datetime,
        user_ids: list[str] | None = None,
        step: str | None = None,
    ) -> Ejection:
        """End the open runs of ``user_ids``, or of everyone at ``step`` (every open run is
        asked, not a sample); each is recorded as a ``journey_ejected`` event naming the
        step, ``actor`` and ``reason``. A run that closed meanwhile is passed by."""
        known = await asyncio.to_thread(journey_steps, self._factory, journey_id)
        if step is not None and step not in [*known, *PLACES]:
            raise UnknownStep(f"journey {journey_id!r} has no step {step!r}")
        _, runs = await asyncio.to_thread(self._open_runs, journey_id, user_ids, None)
        located = await self._locate(runs)
        chosen = [r for r in located if step is None or r.step == step]
        ejected: list[Run] = []
        failed: list[tuple[Run, str]] = []
        signal = EjectSignal(actor=actor, reason=reason)
        for start in range(0, len(chosen), CONCURRENCY):
            batch = chosen[start : start + CONCURRENCY]
            done: list[Run] = []

            async def eject_one(run: Run, done: list[Run] = done) -> None:
                handle = self._client.get_workflow_handle_for(JourneyWorkflow.run, run.workflow_id)
                try:
                    await handle.signal(JourneyWorkflow.eject, signal)
                except RPCError as exc:
                    if exc.status != RPCStatusCode.NOT_FOUND:
                        # One run Temporal refuses never keeps the others from their ejection.
                        failed.append((run, f"{exc.status.name}: {exc.message}"))
                    return  # NOT_FOUND: closed meanwhile, it ended on its own
                done.append(run)

            await _bounded(batch, eject_one)
            await asyncio.to_thread(self._record, journey_id, done, signal, now)
            ejected += done
        found = {r.user_id for r in runs}
        not_open = [u for u in dict.fromkeys(user_ids or []) if u not in found]
        return Ejection(ejected, not_open, failed)

    def _open_runs(
        self, journey_id: str, user_ids: list[str] | None, sample: int | None
    ) -> tuple[int, list[Run]]:
        """How many runs of the journey are open, and those of ``user_ids`` (all users when
        None), a random ``sample`` of them when there are more."""
        stmt = select(
            Enrollment.id, Enrollment.user_id, Enrollment.entry_key, Enrollment.workflow_id
        ).where(Enrollment.journey_id == journey_id, Enrollment.exited_at.is_(None))
        if user_ids is not None:
            stmt = stmt.where(Enrollment.user_id.in_(user_ids))
        with self._factory() as session:
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            if sample is not None and total > sample:
                stmt = stmt.order_by(func.random()).limit(sample)
            else:
                stmt = stmt.order_by(Enrollment.id)
            return total, [Run(*row) for row in session.execute(stmt)]

    async def _locate(self, runs: list[Run]) -> list[Run]:
        """The runs, each with its position (None where the run did not answer in time)."""
        located: dict[int, Run] = {}

        async def ask(run: Run) -> None:
            handle = self._client.get_workflow_handle_for(JourneyWorkflow.run, run.workflow_id)
            try:
                position = await asyncio.wait_for(
                    handle.query(JourneyWorkflow.position, rpc_timeout=QUERY_TIMEOUT),
                    QUERY_TIMEOUT.total_seconds() + 1,
                )
            except (TimeoutError, RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
                position = None  # reported as not answering; the others are still shown
            located[run.enrollment_id] = Run(
                run.enrollment_id, run.user_id, run.entry_key, run.workflow_id, position
            )

        await _bounded(runs, ask)
        return [located[r.enrollment_id] for r in runs]

    def _record(self, journey_id: str, runs: list[Run], signal: EjectSignal, now: datetime) -> None:
        """The ejections as facts (each run also records its own as it exits)."""
        with transaction(self._factory) as session:
            record_ejections(
                session,
                journey_id=journey_id,
                runs=[EjectedRun(r.enrollment_id, r.user_id, r.step) for r in runs],
                actor=signal.actor,
                reason=signal.reason,
                now=now,
            )


def _until_key(run: Run) -> tuple[bool, datetime | None]:
    """Sooner first, runs waiting for nothing in particular last."""
    until = run.position.until if run.position else None
    return (until is None, until)
