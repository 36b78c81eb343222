"""Routing many users' events together: the database work of a batch done at once, in the
caller's transaction (the coupons redeemed and the open runs read for all events at once,
then one write of the entries per journey and entry key), so that a stream of events costs a
few statements rather than a few each."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import bindparam
from sqlalchemy.orm import Session

from enrollment.entries import Entry, redeem
from enrollment.judging import Target, open_runs_stmt, reached, signal_of
from enrollment.versions import REDEEMING_EVENTS, JourneySpecs
from journeys.models import Journey
from store.models import Enrollment, Event
from workflows.journey_contracts import EventSignal

# The journeys an event enters its user into: (version, journey, entry key) each.
Triggered = Callable[[Event, EventSignal], list[tuple[int, Journey, str]]]


class Enroll(Protocol):
    """Writes the entries of users into a journey version under a key, in ``session``."""

    def __call__(
        self,
        journey: Journey,
        version: int,
        user_ids: list[str],
        signals: Mapping[str, EventSignal],
        key: str,
        *,
        session: Session,
    ) -> list[Entry]: ...


@dataclass
class Batch:
    """What a batch of events (one per user) is to do in Temporal, by event id."""

    signals: dict[int, EventSignal]
    # the open runs each event reaches
    targets: dict[int, list[Target]]
    # the runs each event starts
    entries: dict[int, list[tuple[Journey, int, Entry]]]


@dataclass
class Prepared:
    """A batch of stored events, read and sorted in one transaction (``_prepare``)."""

    journeys: list[tuple[int, Journey]]
    quiet: list[int]  # ids of events no journey acts on: only marked routed
    alone: list[Event]  # the only event of its user in the batch
    several: dict[str | None, list[Event]]  # users with more than one, in order
    batch: Batch | None  # the database work of ``alone`` (None: route them one by one)


def plan_batch(
    session: Session,
    specs: JourneySpecs,
    events: list[Event],
    *,
    triggered: Triggered,
    enroll: Enroll,
) -> Batch:
    """Redeem, read the open runs and write the entries of ``events`` (different users'),
    as routing each on its own would, in ``session`` (the caller commits)."""
    signals = {e.id: signal_of(e) for e in events}
    targets = _redeem_and_reach(session, specs, events, signals)
    entries: dict[int, list[tuple[Journey, int, Entry]]] = {e.id: [] for e in events}
    wanted: dict[tuple[str, int, str], tuple[Journey, list[Event]]] = {}
    for event in events:
        for version, journey, key in triggered(event, signals[event.id]):
            wanted.setdefault((journey.id, version, key), (journey, []))[1].append(event)
    for (_, version, key), (journey, entering) in wanted.items():
        by_user = {e.user_id: e for e in entering if e.user_id}
        made = enroll(
            journey,
            version,
            list(by_user),
            {u: signals[e.id] for u, e in by_user.items()},
            key,
            session=session,
        )
        for entry in made:
            entries[by_user[entry.user_id].id].append((journey, version, entry))
    return Batch(signals=signals, targets=targets, entries=entries)


# Built once: every routed batch asks it.
_OPEN_RUNS_OF = open_runs_stmt().where(
    Enrollment.user_id.in_(bindparam("user_ids", expanding=True))
)


def _redeem_and_reach(
    session: Session, specs: JourneySpecs, events: list[Event], signals: dict[int, EventSignal]
) -> dict[int, list[Target]]:
    """Redeem the coupons the events name and find the open runs each event reaches; the
    runs by event id."""
    for event in events:
        code = signals[event.id].properties.get("coupon_code")
        if event.event in REDEEMING_EVENTS and isinstance(code, str):
            redeem(session, event.user_id or "", code, event.timestamp)
    users = sorted({e.user_id for e in events if e.user_id})
    rows: dict[str, list[Any]] = {}
    for start in range(0, len(users), 500):
        chunk = users[start : start + 500]
        # Core: columns, no loaded rows
        for row in session.connection().execute(_OPEN_RUNS_OF, {"user_ids": chunk}):
            rows.setdefault(row.user_id, []).append(row)
    return {
        e.id: reached(session, specs, rows.get(e.user_id or "", []), signals[e.id]) for e in events
    }
