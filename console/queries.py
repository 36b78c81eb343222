"""Read models behind the console pages; each takes a session and never commits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, true, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

import kinds
from store.ledger import SendStatus
from store.models import Consent, Enrollment, JourneyVersion, Message, PushToken, User
from store.models.journeys import ARMS, SET_ASIDE
from store.reports import FAILED, SENT, set_aside_line

PAGE_SIZE = 50
# The ledger columns the messages page filters on, by query parameter.
MESSAGE_FILTERS: dict[str, InstrumentedAttribute[str | None]] = {
    "journey": Message.journey_id,
    "step": Message.step_id,
    "channel": Message.channel,  # type: ignore[dict-item]
    "status": Message.status,  # type: ignore[dict-item]
    "reason": Message.reason,
    "user": Message.user_id,
}


@dataclass
class StepCounts:
    """What one step's sends became: sent, skipped, deferred (held, not decided), failed."""

    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    failed: int = 0


@dataclass
class JourneyTotals:
    entered: int = 0
    converted: int = 0
    running: int = 0
    set_aside: int = 0  # of those entered, the global control's (in neither arm)

    @property
    def set_aside_line(self) -> str:
        return set_aside_line(self.set_aside)


def step_counts(session: Session, *, journey_id: str) -> dict[str, StepCounts]:
    """Ledger counts of every send step of a journey (all versions), by step id."""
    counts: dict[str, StepCounts] = {}
    rows = session.execute(
        select(Message.step_id, Message.status, func.count())
        .where(Message.journey_id == journey_id)
        .group_by(Message.step_id, Message.status)
    )
    for step, status, n in rows:
        c = counts.setdefault(step or "", StepCounts())
        if status in SENT:
            c.sent += n
        elif status == "skipped":
            c.skipped += n
        elif status in FAILED:
            c.failed += n
        else:  # pending: waiting for quiet hours, a cap or a pause to end
            c.deferred += n
    return counts


def journey_totals(session: Session, *, journey_id: str) -> JourneyTotals:
    """Entered, converted and still running enrollments of a journey, and how many of them
    the global control's (set aside from both arms)."""
    entered, converted, running, set_aside = session.execute(
        select(
            func.count(),
            func.count(Enrollment.converted_at),
            func.count().filter(Enrollment.exited_at.is_(None)),
            func.count().filter(Enrollment.group == SET_ASIDE),
        ).where(Enrollment.journey_id == journey_id)
    ).one()
    return JourneyTotals(entered, converted, running, set_aside)


@dataclass
class MessagePage:
    rows: list[Message]
    next_before: int | None  # the cursor of the next (older) page, if any: its last row's id


class UnknownCursor(LookupError):
    """A page was asked for older than a ledger row that does not exist."""


def messages_page(
    session: Session,
    *,
    filters: dict[str, str],
    before: int | None,
    created: tuple[datetime | None, datetime | None] = (None, None),
    limit: int = PAGE_SIZE,
) -> MessagePage:
    """Newest ledger rows first, filtered by exact values and by when they were created
    (``created``: from, inclusive, and to, exclusive), one keyset page after the row
    ``before``.

    Rows are ordered by ``(created_at, id)``, both descending: ids are not in creation order
    (``created_at`` is the instant the writer gives, not when the row reached the store),
    and this order is the one the ledger's indexes keep, alone or after the column of any
    one filter, so a page reads about a page of rows wherever it starts. The cursor is a
    row id, the last row of the page before (links saved from id-ordered pages keep
    working); its ``created_at`` is read from that row.

    Raises:
        UnknownCursor: no ledger row has the id ``before``.
    """
    stmt = select(Message)
    for name, value in filters.items():
        if value:
            stmt = stmt.where(MESSAGE_FILTERS[name] == value)
    low, high = created
    if low is not None:
        stmt = stmt.where(Message.created_at >= low)
    if high is not None:
        stmt = stmt.where(Message.created_at < high)
    if before is not None:
        at = session.scalar(select(Message.created_at).where(Message.id == before))
        if at is None:
            raise UnknownCursor(before)
        stmt = stmt.where(tuple_(Message.created_at, Message.id) < tuple_(at, before))
    stmt = stmt.order_by(Message.created_at.desc(), Message.id.desc())
    rows = list(session.scalars(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return MessagePage(rows, rows[-1].id if more and rows else None)


# Every status a ledger row can have, in the order a send moves through them.
STATUSES = (SendStatus.PENDING, *SENT, SendStatus.SKIPPED, *FAILED)


def filter_choices(session: Session) -> dict[str, list[str]]:
    """The values offered by the filters that are lists: journeys, channels and statuses
    (known sets, so the page never scans the ledger for them)."""
    journeys = session.scalars(select(JourneyVersion.journey_id).distinct())
    return {
        "journey": sorted(journeys),
        "channel": list(kinds.names()),
        "status": list(STATUSES),
    }


@dataclass
class UserView:
    user: User
    consents: list[Consent]
    enrollments: list[Enrollment]
    push_tokens: int


def user_view(session: Session, *, user_id: str) -> UserView | None:
    """A user's profile, consent, enrollments and how many push tokens they have."""
    user = session.get(User, user_id)
    if user is None:
        return None
    consents = session.scalars(
        select(Consent).where(Consent.user_id == user_id).order_by(Consent.channel, Consent.topic)
    )
    enrollments = session.scalars(
        select(Enrollment).where(Enrollment.user_id == user_id).order_by(Enrollment.entered_at)
    )
    tokens = session.scalar(
        select(func.count()).select_from(PushToken).where(PushToken.user_id == user_id)
    )
    return UserView(user, list(consents), list(enrollments), tokens or 0)


@dataclass
class ConversionPoint:
    """Cumulative entries and conversions of each group up to the end of ``day`` (UTC)."""

    day: date
    entered: dict[str, int] = field(default_factory=dict)
    converted: dict[str, int] = field(default_factory=dict)

    def rate(self, group: str) -> float | None:
        n = self.entered.get(group, 0)
        return self.converted.get(group, 0) / n if n else None


def _day(session: Session, column: Any) -> ColumnElement[str]:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)  # SQLite stores naive UTC text


def conversions_over_time(
    session: Session, *, journey_id: str, since: datetime | None = None
) -> list[ConversionPoint]:
    """Day by day, how many of each arm (entered since ``since``) had entered and
    converted so far; the global control's entrants, in neither arm, are left out."""
    entered: Counter[tuple[str, str]] = Counter()
    converted: Counter[tuple[str, str]] = Counter()
    for target, column in ((entered, Enrollment.entered_at), (converted, Enrollment.converted_at)):
        day = _day(session, column)
        rows = session.execute(
            select(Enrollment.group, day, func.count())
            .where(
                Enrollment.journey_id == journey_id,
                Enrollment.group.in_(ARMS),
                column.is_not(None),
                true() if since is None else Enrollment.entered_at >= since,
            )
            .group_by(Enrollment.group, day)
        )
        for group, when, n in rows:
            target[(group, str(when))] += n
    days = sorted({d for _, d in entered} | {d for _, d in converted})
    points: list[ConversionPoint] = []
    running_entered: Counter[str] = Counter()
    running_converted: Counter[str] = Counter()
    for d in days:
        for group in ARMS:
            running_entered[group] += entered[(group, d)]
            running_converted[group] += converted[(group, d)]
        points.append(
            ConversionPoint(date.fromisoformat(d), dict(running_entered), dict(running_converted))
        )
    return points
