"""Read models: one user's timeline, a journey's totals."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Coupon, Enrollment, Event, Message


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # event | enrolled | coupon | message | exit
    text: str


def user_timeline(session: Session, *, user_id: str) -> list[TimelineEntry]:
    """Everything that happened to a user, oldest first: events, entries, coupons, sends
    and skips (with reasons), exits."""
    entries: list[TimelineEntry] = []
    for ev in session.scalars(select(Event).where(Event.user_id == user_id, Event.type == "track")):
        entries.append(TimelineEntry(ev.timestamp, "event", f"{ev.event}"))
    for en in session.scalars(select(Enrollment).where(Enrollment.user_id == user_id)):
        entries.append(
            TimelineEntry(
                en.entered_at,
                "enrolled",
                f"entered {en.journey_id} v{en.journey_version} ({en.group})",
            )
        )
        if en.exited_at is not None:
            what = f"exited {en.journey_id}: {en.exit_reason}"
            entries.append(TimelineEntry(en.exited_at, "exit", what))
    for c in session.scalars(select(Coupon).where(Coupon.user_id == user_id)):
        text = (
            f"coupon {c.code} issued: ¥{c.amount_fen / 100:g} off ¥{c.min_spend_fen / 100:g}+, "
            f"expires {c.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        entries.append(TimelineEntry(c.issued_at, "coupon", text))
    for m in session.scalars(select(Message).where(Message.user_id == user_id)):
        text = f"{m.channel} {m.step_id} ({m.template}): {m.status}"
        if m.reason:
            text += f" — {m.reason}"
        entries.append(TimelineEntry(m.sent_at or m.created_at, "message", text))
    order = {"event": 0, "enrolled": 1, "coupon": 2, "message": 3, "exit": 4}
    entries.sort(key=lambda e: (e.at, order[e.kind]))
    return entries


@dataclass
class JourneyTotals:
    journey_id: str
    entered: Counter[str] = field(default_factory=Counter)  # by group
    converted: Counter[str] = field(default_factory=Counter)  # by group
    exits: Counter[str] = field(default_factory=Counter)  # by reason
    sends: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    # (step, channel, status, reason) -> count

    def conversion_rate(self, group: str) -> float:
        return self.converted[group] / self.entered[group] if self.entered[group] else 0.0


def journey_totals(session: Session, *, journey_id: str) -> JourneyTotals:
    """Entered, converted (treatment vs holdout), exits, and every send outcome by step."""
    totals = JourneyTotals(journey_id)
    rows = session.execute(
        select(
            Enrollment.group,
            Enrollment.exit_reason,
            func.count(),
            func.count(Enrollment.converted_at),
        )
        .where(Enrollment.journey_id == journey_id)
        .group_by(Enrollment.group, Enrollment.exit_reason)
    )
    for group, reason, count, converted in rows:
        totals.entered[group] += count
        totals.converted[group] += converted
        totals.exits[reason or "running"] += count
    sends = session.execute(
        select(Message.step_id, Message.channel, Message.status, Message.reason, func.count())
        .where(Message.journey_id == journey_id)
        .group_by(Message.step_id, Message.channel, Message.status, Message.reason)
    )
    for step, channel, status, reason, count in sends:
        totals.sends[(step or "", channel, status, reason or "")] += count
    return totals
