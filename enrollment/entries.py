"""What routing writes: enrollment rows (the row, not Temporal, decides re-entry once a run
has closed) and the redemption of coupons we issued. Each function takes the caller's session
and never commits."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from audiences.audience import audience_from_data
from audiences.rules import AudienceError
from enrollment.judging import may_reenter
from journeys.models import Journey
from observability.metrics import metrics
from store.models import Coupon, Enrollment, User
from store.models.journeys import SET_ASIDE
from store.program import in_global_control
from store.upsert import insert_returning_many
from workflows.ids import journey_workflow_id
from workflows.journey_contracts import EventSignal

# Routing logs under one name, whichever part of it speaks.
log = logging.getLogger("enrollment.router")


def holdout_group(journey_id: str, user_id: str, percent: float) -> str:
    """Deterministic holdout assignment: the same (journey, user) always lands the same."""
    digest = hashlib.sha256(f"{journey_id}\x00{user_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 10_000
    return "holdout" if bucket < round(percent * 100) else "treatment"


@dataclass(frozen=True)
class Entry:
    """An enrollment whose run should be started: ``group`` is the run's arm of the
    journey's holdout (treatment | holdout) and ``global_control`` whether its user was in
    the global control group at entry (its row's group then says ``global_control``)."""

    user_id: str
    enrollment_id: int
    workflow_id: str
    group: str
    key: str = ""
    number: int = 1
    global_control: bool = False


# What an entry is made of, read or written without loading whole rows.
_ENTRY_COLUMNS = (
    Enrollment.id,
    Enrollment.user_id,
    Enrollment.workflow_id,
    Enrollment.group,
    Enrollment.entry_number,
    Enrollment.trigger_message_id,
)


# Built once: every routed batch asks it.
_ENTRIES_OF = select(*_ENTRY_COLUMNS, Enrollment.exited_at).where(
    Enrollment.journey_id == bindparam("journey_id"),
    Enrollment.user_id.in_(bindparam("user_ids", expanding=True)),
    Enrollment.entry_key == bindparam("key"),
)


def _entry(journey: Journey, row: Any, key: str) -> Entry:
    """The entry a row records; a set-aside row's run keeps its arm of the journey."""
    control = row.group == SET_ASIDE
    group = holdout_group(journey.id, row.user_id, journey.holdout) if control else row.group
    return Entry(
        row.user_id, row.id, row.workflow_id, group, key, row.entry_number, global_control=control
    )


def enroll_many(
    session: Session,
    journey: Journey,
    version: int,
    user_ids: list[str],
    signals: EventSignal | Mapping[str, EventSignal],
    key: str,
    *,
    now: datetime,
    global_control_percent: float = 0,
    global_control_salt: str = "global-control",
) -> list[Entry]:
    """Write (or find) the enrollment rows of many users; the entries whose runs should be
    started, in ``user_ids`` order. ``signals`` is the trigger of all of them (a sweep's tick)
    or each user's own (a batch of events).

    For each user the newest enrollment of (journey, user, key) decides: an open one keeps
    its run (a repeated trigger reaches it as a signal); a closed one allows a new entry as
    ``re_entry`` says. Only the event that created a row may start its run, so a retried
    duplicate (or a retried sweep page) starts nothing new. Re-entry windows are judged
    at ``now``.

    A new row records whether its user is in the global control group
    (``global_control_percent`` of users by ``global_control_salt``, :mod:`store.program`)
    as its group, ``global_control``, so the journey's report sets it aside however the
    share or salt change later; its run still gets its arm of the journey's holdout.
    """
    signal_of: Mapping[str, EventSignal] = (
        dict.fromkeys(user_ids, signals) if isinstance(signals, EventSignal) else signals
    )
    entries: dict[str, Entry] = {}
    latest: dict[str, Any] = {}
    rows = session.connection().execute(  # Core: columns, no loaded rows
        _ENTRIES_OF, {"journey_id": journey.id, "user_ids": list(user_ids), "key": key}
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
                    entries[user_id] = _entry(journey, last, key)
                continue
            if last.exited_at is None or not may_reenter(journey, last.exited_at, now):
                continue
        candidates.append(user_id)
    if journey.entry is not None and candidates:
        # Each user is judged at their event's time.
        at_time: dict[datetime, list[str]] = {}
        for user_id in candidates:
            at_time.setdefault(signal_of[user_id].timestamp, []).append(user_id)
        allowed: set[str] = set()
        for at, users in at_time.items():
            allowed |= in_entry_audience(session, journey, users, at)
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
                "group": SET_ASIDE
                if in_global_control(
                    user_id, percent=global_control_percent, salt=global_control_salt
                )
                else holdout_group(journey.id, user_id, journey.holdout),
                "workflow_id": wid,
                "trigger_message_id": signal_of[user_id].message_id,
                # business time: when it happened
                "entered_at": signal_of[user_id].timestamp,
            }
        )
    written: list[Any] = []
    for start in range(0, len(new_rows), 500):  # within every database's parameter limit
        written += insert_returning_many(
            session, Enrollment, rows=new_rows[start : start + 500], columns=_ENTRY_COLUMNS
        )
    # A row not written was written meanwhile by a concurrent entry (or a retry): read it.
    taken = [wid for wid in wanted if wid not in {row.workflow_id for row in written}]
    if taken:
        written += (
            session.connection()
            .execute(select(*_ENTRY_COLUMNS).where(Enrollment.workflow_id.in_(taken)))
            .all()
        )
    for row in written:
        # Not a concurrent entry:
        if row.trigger_message_id == signal_of[row.user_id].message_id:
            metrics().enrollment_started(journey.id, row.group)
            entries[row.user_id] = _entry(journey, row, key)
    return [entries[u] for u in dict.fromkeys(user_ids) if u in entries]


def in_entry_audience(
    session: Session, journey: Journey, user_ids: list[str], at: datetime
) -> set[str]:
    """The users among ``user_ids`` in the journey's entry audience at ``at``."""
    try:
        audience = audience_from_data(journey.entry, source=f"{journey.id}.entry")
    except AudienceError:
        log.exception("journey %s has an unusable entry rule", journey.id)
        return set()
    cond = audience.condition(session, at, correlated=True)
    return set(session.scalars(select(User.id).where(User.id.in_(user_ids), cond)))


def redeem(session: Session, user_id: str, code: str, at: datetime) -> None:
    """A coupon we issued was used: reports count it redeemed."""
    session.execute(
        update(Coupon)
        .where(Coupon.user_id == user_id, Coupon.code == code, Coupon.redeemed_at.is_(None))
        .values(redeemed_at=at)
    )
